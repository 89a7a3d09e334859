//! What a dataset file declares, once read: systems, their collections (tables) and fields,
//! with the positions they were declared at so that every later check can point at them.

/// A place in a dataset file: 1-based line and column.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line.
    pub line: usize,
    /// Column, in characters.
    pub column: usize,
}

/// One system holding the provider's PI: a database Steward reaches over a connection of the
/// same key in the settings, or an external system it asks by webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// The key (`fides_key`): unique across every file, and the name of the connection.
    pub key: String,
    /// Where it was declared.
    pub pos: Pos,
    /// The file it came from.
    pub file: String,
    /// A name for people; the key when absent.
    pub name: String,
    /// Set for a system Steward cannot query.
    pub external: Option<External>,
    /// Its collections, in file order.
    pub collections: Vec<Collection>,
}

/// A system Steward cannot query: it is sent the subject's identities and answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct External {
    /// The identities it is sent.
    pub identities: Vec<(Identity, Pos)>,
    /// The policy categories it holds (for the certificate and the export's account).
    pub categories: Vec<(String, Pos)>,
}

/// A table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collection {
    /// The table's name (in the connection's schema or database).
    pub name: String,
    /// Where it was declared.
    pub pos: Pos,
    /// Erasure deletes the subject's rows (`steward.erase: delete_row`, or Fides'
    /// `masking_strategy_override: {strategy: delete}`); else it masks their fields.
    pub delete_rows: Option<Pos>,
    /// Its fields, in file order.
    pub fields: Vec<Field>,
}

impl Collection {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The names of the fields at `indexes`.
    pub fn names(&self, indexes: &[usize]) -> Vec<String> {
        indexes
            .iter()
            .filter_map(|&i| self.fields.get(i).map(|f| f.name.clone()))
            .collect()
    }

    /// The indexes of the fields declared part of the primary key, in field order.
    pub fn key_fields(&self) -> Vec<usize> {
        self.fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.primary_key)
            .map(|(i, _)| i)
            .collect()
    }
}

/// A column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The column's name.
    pub name: String,
    /// Where it was declared.
    pub pos: Pos,
    /// The policy categories of its values (resolved from names or taxonomy keys); empty
    /// for a column that is not PI (keys, timestamps).
    pub categories: Vec<(String, Pos)>,
    /// The subject's identity it holds, where rows are found from.
    pub identity: Option<(Identity, Pos)>,
    /// Declared part of the primary key.
    pub primary_key: bool,
    /// Declared type.
    pub data_type: Option<(DataType, Pos)>,
    /// What it refers to: it holds values of those fields (a foreign key, declared or not).
    pub references: Vec<Reference>,
    /// What erasure does to it.
    pub erase: Erase,
    /// Where `erase` was set, if it was.
    pub erase_pos: Option<Pos>,
    /// A correction may set it.
    pub correctable: bool,
}

impl Field {
    /// Whether it holds PI: a category or an identity.
    pub fn is_pi(&self) -> bool {
        !self.categories.is_empty() || self.identity.is_some()
    }
}

/// An identity rows are found by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Identity {
    /// Steward's subject id (a UUID), as the provider stored it.
    SubjectId,
    /// The values Steward holds for the subject in this policy category (`email`, `phone`).
    Category(String),
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::SubjectId => f.write_str("subject_id"),
            Identity::Category(c) => f.write_str(c),
        }
    }
}

/// A field's declared type (Fides' `data_type`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DataType {
    /// Text.
    String,
    /// Whole numbers.
    Integer,
    /// Numbers with fractions.
    Float,
    /// True or false.
    Boolean,
    /// A point in time or a date.
    Time,
    /// Raw bytes.
    Bytes,
    /// A UUID.
    Uuid,
    /// JSON.
    Json,
}

impl DataType {
    /// Every type, as written.
    pub const NAMES: [&'static str; 8] = [
        "string", "integer", "float", "boolean", "time", "bytes", "uuid", "json",
    ];

    /// The type written `word`.
    pub fn parse(word: &str) -> Option<DataType> {
        Some(match word {
            "string" => DataType::String,
            "integer" => DataType::Integer,
            "float" => DataType::Float,
            "boolean" => DataType::Boolean,
            "time" => DataType::Time,
            "bytes" => DataType::Bytes,
            "uuid" => DataType::Uuid,
            "json" | "object" => DataType::Json,
            _ => return None,
        })
    }

    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::String => "string",
            DataType::Integer => "integer",
            DataType::Float => "float",
            DataType::Boolean => "boolean",
            DataType::Time => "time",
            DataType::Bytes => "bytes",
            DataType::Uuid => "uuid",
            DataType::Json => "json",
        }
    }
}

/// A reference: the field holds values of `collection.field` in `dataset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The dataset referred to (this one when the file does not say).
    pub dataset: String,
    /// Its collection.
    pub collection: String,
    /// Its field.
    pub field: String,
    /// Which way a walk may follow it.
    pub direction: Direction,
    /// Where it was declared.
    pub pos: Pos,
}

/// Which way a walk from the subject's identities may follow a reference.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the referred field to this one: rows of this collection are found from the
    /// values found there (`direction: from`, a child found from its parent).
    From,
    /// From this field to the referred one (`direction: to`, a parent found from its child).
    To,
    /// Both ways (no `direction`).
    Both,
}

/// What erasure does to a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Erase {
    /// Set it to NULL (the default for a field holding PI).
    Null,
    /// Set it to this value.
    Fixed(String),
    /// Replace it with a keyed hash of its value (hex HMAC-SHA256 under a key of the
    /// deployment's; the same value hashes the same within a deployment, so counts and joins
    /// on it still work; it cannot be reversed without the key).
    Hash,
    /// Delete the whole row.
    DeleteRow,
    /// Leave it (a field holding no PI).
    Keep,
}
