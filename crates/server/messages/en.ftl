## The web pages' words, in English. Every message has its twin in zh-CN.ftl, with the same
## attributes and arguments (a test fails otherwise). Values are escaped where they are used.

lang-name = English
lang-switch = 中文
skip = Skip to the content
centre = Privacy centre
nav-label = Language and account
sign-out = Sign out

signin-title = Sign in to the privacy centre
signin-intro = See what we hold about you, take a copy, correct it, delete it and follow your requests. We email you a one-time code; no password is needed.
signin-email = Email address
signin-email-hint = The address your account uses.
signin-send = Email me a code

code-title = Enter your code
code-intro = If { $email } belongs to an account, we have emailed it a six-digit code. It works for 10 minutes.
code-label = Six-digit code
code-hint = Type or paste it from the email.
code-submit = Sign in
code-again = Ask for a new code

data-title = What we hold about you
data-intro = Each kind of information we hold about you, what it is used for, who it may go to and how long it is kept. Only you see this page.
data-none = We hold no personal information about you.
data-values = What we hold
data-purposes = Used for
data-recipients = May be given to
data-recipients-none = No one outside the provider.
data-retention = Kept
data-collected = collected { $at }
data-meta = ({ $collected }, { $source })
data-source-subject = given by you
data-source-observed = observed as you used the service
data-source-third_party = received from { $party }
retention-account_closed = while your account is open, and { $days } days after it is closed
retention-collected = { $days } days after it is collected

nav-data = What we hold
nav-consents = Consent
nav-requests = Requests
data-download = Download a copy (JSON)

consents-title = Your consent
consents-intro = We use your information for these purposes only with your consent. Give or withdraw it here at any time; withdrawing takes effect at once. Each choice is recorded with a signed receipt.
consent-given = You consented on { $at }.
consent-withdrawn = You withdrew your consent on { $at }.
consent-never = You have not consented.
consent-give = Give consent
consent-withdraw = Withdraw consent
consent-saved = Your choice is saved.

requests-title = Your requests
requests-intro = Ask for a copy, a correction or a deletion, cancel your account, or ask a question or complain. We answer every request by its deadline.
requests-none = You have made no requests.
requests-new = Make a request
requests-kind = What do you want?
requests-text = Details (optional)
requests-text-hint = Say which information, and what should change. Do not include passwords.
requests-send = Send the request
requests-sent = We received your request. We will answer by { $due }.
request-due = Answer due by { $due }
request-overdue = overdue
request-reason = Reason: { $reason }
kind-access = A copy of your information
kind-correction = Correct your information
kind-deletion = Delete your information
kind-deletion_unlawful = Delete information processed unlawfully
kind-consent_withdrawal = Withdraw a consent
kind-account_cancellation = Cancel your account
kind-inquiry = A question or complaint
state-received = received
state-verified = identity confirmed
state-in_progress = in progress
state-completed = completed
state-refused = refused
reason-legal_obligation = the law requires us to keep or process this information
reason-legal_hold = a legal hold (a court, an authority or a dispute) requires us to keep this information
reason-security = acting on it would put the security of our service or of others at risk
reason-rights_of_others = acting on it would affect the rights of other people
reason-technically_infeasible = it is not technically possible

error-title = There is a problem
error-invalid_input = Check what you entered.
error-code_invalid = The code is wrong, expired or used up. Ask for a new one.
error-too_many_attempts = Too many attempts. Wait a while and try again.
error-mail_unavailable = We cannot send email just now. Try again later.
error-csrf = This form has expired or did not come from this site. Reload the page and try again.
error-signed_out = Your session has ended. Sign in again.
error-other = Something went wrong. Try again later.
