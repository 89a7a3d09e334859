## 网页上的文字（中文）。每条消息在 en.ftl 中都有对应的一条，属性与参数相同（否则测试失败）。
## 使用处会对取值进行转义。

lang-name = 中文
lang-switch = English
skip = 跳到正文
centre = 隐私中心
nav-label = 语言与账户
sign-out = 退出

signin-title = 登录隐私中心
signin-intro = 查看我们持有的您的信息，获取副本、更正、删除，并跟踪您的请求。我们会向您的邮箱发送一次性验证码，无需密码。
signin-email = 电子邮箱
signin-email-hint = 您的账户所用的邮箱地址。
signin-send = 发送验证码

code-title = 输入验证码
code-intro = 如果 { $email } 属于某个账户，我们已向其发送六位验证码，10 分钟内有效。
code-label = 六位验证码
code-hint = 输入或从邮件中粘贴。
code-submit = 登录
code-again = 重新获取验证码

data-title = 我们持有的您的信息
data-intro = 我们持有的每类您的信息、其用途、可能提供给谁以及保存多久。此页面仅您本人可见。
data-none = 我们未持有您的个人信息。
data-values = 我们持有的内容
data-purposes = 用于
data-recipients = 可能提供给
data-recipients-none = 不提供给服务提供者以外的任何人。
data-retention = 保存期限
data-collected = 收集于 { $at }
data-meta = （{ $collected }，{ $source }）
data-source-subject = 由您提供
data-source-observed = 在您使用服务时记录
data-source-third_party = 来自 { $party }
retention-account_closed = 在您的账户存续期间，以及账户注销后 { $days } 天
retention-collected = 收集后 { $days } 天

nav-data = 我们持有的信息
nav-consents = 同意
nav-requests = 请求
data-download = 下载副本（JSON）

consents-title = 您的同意
consents-intro = 我们仅在取得您的同意后，才会为以下目的使用您的信息。您可随时在此同意或撤回，撤回立即生效。每次选择都会被记录，并附有经签名的凭证。
consent-given = 您已于 { $at } 同意。
consent-withdrawn = 您已于 { $at } 撤回同意。
consent-never = 您尚未同意。
consent-give = 同意
consent-withdraw = 撤回同意
consent-saved = 您的选择已保存。

requests-title = 您的请求
requests-intro = 您可以要求获取副本、更正或删除信息、注销账户，或提出问题与投诉。我们会在期限内答复每一项请求。
requests-none = 您尚未提出任何请求。
requests-new = 提出请求
requests-kind = 您希望我们做什么？
requests-text = 说明（可选）
requests-text-hint = 请说明涉及哪些信息以及需要如何更改。请勿填写密码。
requests-send = 提交请求
requests-sent = 我们已收到您的请求，将于 { $due } 前答复。
request-due = 答复期限：{ $due }
request-overdue = 已逾期
request-reason = 原因：{ $reason }
kind-access = 获取您的信息副本
kind-correction = 更正您的信息
kind-deletion = 删除您的信息
kind-deletion_unlawful = 删除被违法处理的信息
kind-consent_withdrawal = 撤回一项同意
kind-account_cancellation = 注销您的账户
kind-inquiry = 提出问题或投诉
state-received = 已收到
state-verified = 已核验身份
state-in_progress = 处理中
state-completed = 已完成
state-refused = 已拒绝
reason-legal_obligation = 法律要求我们保留或处理这些信息
reason-legal_hold = 法律保全（法院、主管机关或争议）要求我们保留这些信息
reason-security = 执行该请求会危及我们的服务或他人的安全
reason-rights_of_others = 执行该请求会影响他人的权利
reason-technically_infeasible = 技术上无法实现

error-title = 出现问题
error-invalid_input = 请检查您输入的内容。
error-code_invalid = 验证码错误、已过期或已使用，请重新获取。
error-too_many_attempts = 尝试次数过多，请稍后再试。
error-mail_unavailable = 暂时无法发送邮件，请稍后再试。
error-csrf = 此表单已过期或并非来自本站。请刷新页面后重试。
error-signed_out = 您的登录已结束，请重新登录。
error-other = 出现错误，请稍后再试。
