## Messages to subjects, in English. Every message here has its twin in zh-CN.ftl, with the
## same attributes and arguments (a test fails otherwise). Plain text: they go into emails.

signature = { $provider }, privacy team

request-kind-access = a copy of your personal information
request-kind-correction = a correction of your personal information
request-kind-deletion = the deletion of your personal information
request-kind-deletion_unlawful = the deletion of personal information processed unlawfully
request-kind-consent_withdrawal = the withdrawal of a consent
request-kind-account_cancellation = the cancellation of your account
request-kind-inquiry = a question or complaint about your personal information

refusal-reason-legal_obligation = the law requires us to keep or process this information
refusal-reason-legal_hold = a legal hold (a court, an authority or a dispute) requires us to keep this information
refusal-reason-security = acting on it would put the security of our service or of others at risk
refusal-reason-rights_of_others = acting on it would affect the rights of other people
refusal-reason-technically_infeasible = it is not technically possible

request-received = We received your request ({ $request })
    .body =
        We received your request for { $kind }.
        Reference: { $request }
        We will answer by { $due }.

        If you did not make this request, reply to this email.

request-verified = We confirmed it is you ({ $request })
    .body =
        We confirmed your identity for your request for { $kind } and are now working on it.
        Reference: { $request }
        We will answer by { $due }.

request-completed = Your request is done ({ $request })
    .body =
        We have completed your request for { $kind }.
        Reference: { $request }
        { $note }

request-refused = We cannot carry out your request ({ $request })
    .body =
        We cannot carry out your request for { $kind }, in whole or in part, because { $reason }.
        Reference: { $request }
        { $note }

        What you can do: reply to this email to ask us to reconsider, open a new request in
        the privacy centre, or complain to the authority that protects personal information.

note-none = {""}
note-some = Our note: { $note }

## To staff contacts (configured), about a request's deadline.

reminder-due-soon = Due by { $due }: { $request }
    .body =
        A request for { $kind } ({ $request }) must be answered by { $due }.
        Work it in the console, or with GET /v1/requests/{ $request }.

reminder-overdue = Overdue since { $due }: { $request }
    .body =
        A request for { $kind } ({ $request }) was due on { $due } and has not been answered.
        This is an escalation to the privacy officer: answer it now, or record why it cannot be.

## A new version of the policy (P30): the notice, and each change in plain words.

policy-notice = { $provider }: our privacy statement changes on { $effective } (version { $version })
    .body =
        We are changing our privacy statement. Version { $version } takes effect on { $effective } (UTC).

        What changes:
        { $changes }

        Where a purpose is marked as asking for your consent again, we will not use your
        information for it until you agree. You can read the whole statement, see every
        version and accept or refuse in the privacy centre. If you keep using our services
        after { $effective }, the changes that rest on our contract with you apply to you.

change-added = New { $table } `{ $name }`
change-removed = { $table } `{ $name }` removed
change-widened = { $table } `{ $name }`: { $field } widened
change-narrowed = { $table } `{ $name }`: { $field } narrowed
change-changed = { $table } `{ $name }`: { $field } changed
change-widened-item = { $table } `{ $name }` widened
change-narrowed-item = { $table } `{ $name }` narrowed
change-changed-item = { $table } `{ $name }` changed
change-reconsent = {" "}(we will ask for your consent again)

change-table-categories = category of information
change-table-features = feature
change-table-purposes = purpose
change-table-roles = role
change-table-recipients = recipient
change-table-cookies = cookie
change-table-policy = statement
change-table-deadlines = deadline
change-table-incidents = incident reporting

change-field-reads = information it uses
change-field-related = related purposes
change-field-basis = legal basis
change-field-description = description
change-field-taxonomy = classification
change-field-categories = information
change-field-purposes = purposes
change-field-retention = how long it is kept
change-field-region = where it is kept
change-field-legal_name = company
change-field-kind = kind of recipient
change-field-lookup = searchability
change-field-sensitive = sensitivity
change-field-separate_consent = separate consent
change-field-required = required information
change-field-optional = optional information
change-field-lifetime_days = lifetime
change-field-purpose = purpose

## The statement in plain language (GET /v1/policy/versions/{v}).

statement-title = { $name } (version { $version }, effective { $effective })
statement-regions = Personal information is stored only in: { $regions }.
statement-collect = What we collect, and why
statement-feature = - { $description } ({ $name }): { $basis }.
statement-feature-required = always collects: { $list }
statement-feature-optional = may collect, if you provide it: { $list }
statement-feature-separate = sensitive, collected only with your separate consent: { $list }
statement-use = How we use it
statement-purpose = - { $description } ({ $name }): { $basis }; uses { $list }.
statement-share = Who we share it with
statement-share-none = - no one
statement-recipient = - { $legal_name } ({ $kind }, { $region }), bound by { $agreement }: may receive { $categories } for { $purposes }.
statement-abroad = {" "}This is a transfer abroad and needs your separate consent.
statement-keep = How long we keep it
statement-category = - { $description }{ $sensitive }: { $retention }.
statement-sensitive = {" "}(sensitive)
statement-cookies = Cookies
statement-cookie = - { $name } ({ $description }): { $purpose }, kept { $days }, { $when }.
statement-cookie-consent = off until you agree
statement-cookie-essential = essential
statement-deadlines = Our deadlines
statement-deadline-request = - we answer requests about your data within { $days }
statement-deadline-inquiry = - we answer questions and complaints within { $days }
statement-deadline-erasure = - after you close your account, we erase your data within { $days }
statement-deadline-notice = - we announce material changes { $days } before they take effect
statement-deadline-incident = - we report security incidents to the authority within { $hours } hours

basis-contract = needed to provide the service you signed up for
basis-consent = only with your consent
basis-legal_obligation = required by law

recipient-kind-affiliate = a company of our group
recipient-kind-processor = a processor acting for us
recipient-kind-contractor = a contractor
recipient-kind-agent = an agent
recipient-kind-successor = the successor to our business

retention-collected = { $days } after collection
retention-account = while the account exists
retention-account-then = while the account exists, then { $days }

days = { $n } days
days-one = 1 day
list-none = nothing
list-separator = {", "}
list-and = { $init } and { $last }

## Incidents (P22): the report to authorities, the notice to those affected, staff mails.

incident-report-title = Personal information security incident report: { $title } ({ $incident })
incident-report-provider = Provider: { $provider }. Contact: { $contact }
incident-report-grade = Grade: { $grade }. State: { $state }
incident-report-times = Detected: { $detected }. Became known: { $known }
incident-report-window = Exposure window: { $from } to { $to }; where held: { $location }
incident-report-categories = Categories of personal information involved:
incident-report-category = - { $description } ({ $name }){ $sensitive }: { $n } people
incident-report-affected = People affected: { $n }
incident-report-region = - in { $region }: { $n }
incident-report-cause = Cause: { $text }
incident-report-harm = Possible harm: { $text }
incident-report-measures = Remedial measures taken:
incident-report-advice = What you can do to reduce the harm: { $text }
incident-report-notified = People notified: { $notified } delivered, { $failed } failed, { $pending } pending
incident-report-clocks = Reports to authorities:
incident-report-clock = - { $part } report to { $authority }, due { $due }: { $status }

incident-grade-general = general
incident-grade-relatively_major = relatively major
incident-grade-major = major
incident-grade-especially_major = especially major
incident-state-open = open
incident-state-contained = contained
incident-state-handled = handled
incident-part-initial = initial
incident-part-update = update
incident-part-final = final
incident-clock-filed = filed
incident-clock-overdue = overdue
incident-clock-due = due
incident-clock-waiting = waiting for the incident to be handled

incident-notice = { $provider }: a security incident involving your personal information
incident-notice-what = What happened: { $title } (detected { $detected }).
incident-notice-categories = Personal information involved: { $list }
incident-notice-measures = What we have done: { $list }
incident-notice-contact = Contact us: { $contact }

incident-opened = Incident opened: { $title } ({ $incident })
    .body =
        An incident was opened: { $title } ({ $incident }), grade { $grade }, { $n } people affected.
        Its reports to authorities are on the deadline board. Run it in the console, or with
        GET /v1/incidents/{ $incident }.

incident-report-due-soon = Report due by { $due }: incident { $incident }
    .body =
        The report of incident { $title } ({ $incident }) to { $authority } is due by { $due }.
        File it, then record it with POST /v1/incidents/{ $incident }/reports.

incident-report-overdue = Report overdue since { $due }: incident { $incident }
    .body =
        The report of incident { $title } ({ $incident }) to { $authority } was due by { $due }
        and has not been recorded as filed. This is an escalation to the privacy officer.

## Disclosures required by law (P15) and transfers (P14).

legal-basis-law = a legal obligation
legal-basis-court_order = a court order
legal-basis-authority_request = a request from an authority
legal-basis-agreement_enforcement = enforcing our agreement with you

disclosure-legal = { $provider }: we disclosed some of your personal information as the law requires
    .body =
        On { $at } we disclosed the following personal information of yours to { $body }, on the
        basis of { $basis } (reference: { $reference }): { $categories }.

        Your export in the privacy centre lists every disclosure of your information.

transfer-notice = { $provider }: your personal information will move to { $successor }
    .body =
        On { $date } (UTC) our business passes to { $successor }, which takes over the following
        personal information of yours: { $categories }. It is bound to our privacy statement by
        agreement { $agreement }, and you keep every right the statement gives you.

        If you do not want your information to move, you can delete it or cancel your account in
        the privacy centre before that date.
