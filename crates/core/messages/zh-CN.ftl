## 发给个人信息主体的消息（简体中文）。每条消息在 en.ftl 中都有对应的一条，属性与参数相同（否则测试失败）。
## 纯文本：用于电子邮件。

signature = { $provider } 隐私团队

request-kind-access = 获取您的个人信息副本
request-kind-correction = 更正您的个人信息
request-kind-deletion = 删除您的个人信息
request-kind-deletion_unlawful = 删除被违法处理的个人信息
request-kind-consent_withdrawal = 撤回同意
request-kind-account_cancellation = 注销您的账号
request-kind-inquiry = 关于您个人信息的咨询或投诉

refusal-reason-legal_obligation = 法律要求我们保存或处理这些信息
refusal-reason-legal_hold = 法律保全（法院、主管部门或争议）要求我们保存这些信息
refusal-reason-security = 执行该请求会危及我们的服务或他人的安全
refusal-reason-rights_of_others = 执行该请求会影响他人的权利
refusal-reason-technically_infeasible = 技术上无法实现

request-received = 我们已收到您的请求（{ $request }）
    .body =
        我们已收到您关于「{ $kind }」的请求。
        编号：{ $request }
        我们将于 { $due } 前答复。

        如果这不是您本人提出的请求，请回复本邮件。

request-verified = 我们已核实您的身份（{ $request }）
    .body =
        我们已核实您的身份，正在处理您关于「{ $kind }」的请求。
        编号：{ $request }
        我们将于 { $due } 前答复。

request-completed = 您的请求已处理完毕（{ $request }）
    .body =
        我们已处理完毕您关于「{ $kind }」的请求。
        编号：{ $request }
        { $note }

request-refused = 我们无法执行您的请求（{ $request }）
    .body =
        我们无法全部或部分执行您关于「{ $kind }」的请求，原因是：{ $reason }。
        编号：{ $request }
        { $note }

        您可以：回复本邮件请我们重新考虑；在隐私中心提出新的请求；或向个人信息保护主管部门投诉。

note-none = {""}
note-some = 我们的说明：{ $note }

## 发给（配置中的）工作人员联系人：请求的期限。

reminder-due-soon = 请于 { $due } 前答复：{ $request }
    .body =
        关于「{ $kind }」的请求（{ $request }）须于 { $due } 前答复。
        请在控制台处理，或使用 GET /v1/requests/{ $request }。

reminder-overdue = 已于 { $due } 逾期：{ $request }
    .body =
        关于「{ $kind }」的请求（{ $request }）应于 { $due } 前答复，至今尚未答复。
        此邮件已上报隐私负责人：请立即答复，或记录无法答复的原因。

## 政策新版本（P30）：通知，以及每项变化的通俗说明。

policy-notice = { $provider }：我们的隐私政策将于 { $effective } 更新（版本 { $version }）
    .body =
        我们将更新隐私政策。版本 { $version } 将于 { $effective }（UTC）生效。

        主要变化：
        { $changes }

        对标注为需要重新征求同意的目的，在您同意之前，我们不会将您的信息用于该目的。
        您可以在隐私中心阅读完整政策、查看所有版本，并选择接受或拒绝。如果您在 { $effective }
        之后继续使用我们的服务，基于我们与您之间合同的变更将适用于您。

change-added = 新增{ $table }「{ $name }」
change-removed = 删除{ $table }「{ $name }」
change-widened = { $table }「{ $name }」的{ $field }范围扩大
change-narrowed = { $table }「{ $name }」的{ $field }范围缩小
change-changed = { $table }「{ $name }」的{ $field }发生变化
change-widened-item = { $table }「{ $name }」范围扩大
change-narrowed-item = { $table }「{ $name }」范围缩小
change-changed-item = { $table }「{ $name }」发生变化
change-reconsent = （我们将重新征求您的同意）

change-table-categories = 个人信息类别
change-table-features = 功能
change-table-purposes = 处理目的
change-table-roles = 角色
change-table-recipients = 接收方
change-table-cookies = Cookie
change-table-policy = 政策
change-table-deadlines = 期限
change-table-incidents = 安全事件报告

change-field-reads = 使用的信息
change-field-related = 相关目的
change-field-basis = 法律依据
change-field-description = 说明
change-field-taxonomy = 分类
change-field-categories = 信息
change-field-purposes = 目的
change-field-retention = 保存期限
change-field-region = 存储地点
change-field-legal_name = 公司
change-field-kind = 接收方类型
change-field-lookup = 可检索性
change-field-sensitive = 敏感程度
change-field-separate_consent = 单独同意
change-field-required = 必需信息
change-field-optional = 可选信息
change-field-lifetime_days = 有效期
change-field-purpose = 目的

## 通俗易懂的政策说明（GET /v1/policy/versions/{v}）。

statement-title = { $name }（版本 { $version }，自 { $effective } 起生效）
statement-regions = 个人信息仅存储于：{ $regions }。
statement-collect = 我们收集哪些信息，以及为什么
statement-feature = - { $description }（{ $name }）：{ $basis }。
statement-feature-required = 始终收集：{ $list }
statement-feature-optional = 在您提供时收集：{ $list }
statement-feature-separate = 敏感个人信息，仅在取得您的单独同意后收集：{ $list }
statement-use = 我们如何使用这些信息
statement-purpose = - { $description }（{ $name }）：{ $basis }；使用 { $list }。
statement-share = 我们与谁共享
statement-share-none = - 不与任何人共享
statement-recipient = - { $legal_name }（{ $kind }，{ $region }），受 { $agreement } 约束：可因 { $purposes } 接收 { $categories }。
statement-abroad = 这属于向境外提供个人信息，需要取得您的单独同意。
statement-keep = 我们保存多久
statement-category = - { $description }{ $sensitive }：{ $retention }。
statement-sensitive = （敏感个人信息）
statement-cookies = Cookie
statement-cookie = - { $name }（{ $description }）：{ $purpose }，保存 { $days }，{ $when }。
statement-cookie-consent = 在您同意前不启用
statement-cookie-essential = 必要
statement-deadlines = 我们的期限
statement-deadline-request = - 我们在 { $days }内答复关于您个人信息的请求
statement-deadline-inquiry = - 我们在 { $days }内答复咨询和投诉
statement-deadline-erasure = - 您注销账号后，我们在 { $days }内删除您的个人信息
statement-deadline-notice = - 重大变更在生效前 { $days }公告
statement-deadline-incident = - 发生安全事件时，我们在 { $hours } 小时内向主管部门报告

basis-contract = 为提供您所订购的服务所必需
basis-consent = 仅在取得您的同意后
basis-legal_obligation = 法律要求

recipient-kind-affiliate = 我们集团内的公司
recipient-kind-processor = 受托处理者
recipient-kind-contractor = 承包方
recipient-kind-agent = 代理方
recipient-kind-successor = 我们业务的承接方

retention-collected = 收集后保存 { $days }
retention-account = 在账号存续期间保存
retention-account-then = 在账号存续期间保存，之后再保存 { $days }

days = { $n } 天
days-one = 1 天
list-none = 无
list-separator = 、
list-and = { $init }和{ $last }

## 安全事件（P22）：向主管部门的报告、给受影响者的通知、给工作人员的邮件。

incident-report-title = 个人信息安全事件报告：{ $title }（{ $incident }）
incident-report-provider = 个人信息处理者：{ $provider }。联系方式：{ $contact }
incident-report-grade = 事件级别：{ $grade }。状态：{ $state }
incident-report-times = 发现时间：{ $detected }。知悉时间：{ $known }
incident-report-window = 泄露时段：{ $from } 至 { $to }；存储位置：{ $location }
incident-report-categories = 涉及的个人信息种类：
incident-report-category = - { $description }（{ $name }）{ $sensitive }：{ $n } 人
incident-report-affected = 受影响人数：{ $n }
incident-report-region = - { $region }：{ $n } 人
incident-report-cause = 发生原因：{ $text }
incident-report-harm = 可能造成的危害：{ $text }
incident-report-measures = 已采取的补救措施：
incident-report-advice = 个人可以采取的减轻危害的措施：{ $text }
incident-report-notified = 已通知：送达 { $notified } 人，失败 { $failed } 人，待发送 { $pending } 人
incident-report-clocks = 向主管部门的报告：
incident-report-clock = - 向 { $authority } 的{ $part }报告，截止 { $due }：{ $status }

incident-grade-general = 一般
incident-grade-relatively_major = 较大
incident-grade-major = 重大
incident-grade-especially_major = 特别重大
incident-state-open = 处置中
incident-state-contained = 已控制
incident-state-handled = 已处置完毕
incident-part-initial = 初次
incident-part-update = 续报
incident-part-final = 总结
incident-clock-filed = 已报告
incident-clock-overdue = 已逾期
incident-clock-due = 待报告
incident-clock-waiting = 待事件处置完毕后计时

incident-notice = { $provider }：涉及您个人信息的安全事件通知
incident-notice-what = 发生了什么：{ $title }（发现于 { $detected }）。
incident-notice-categories = 涉及的个人信息：{ $list }
incident-notice-measures = 我们已采取的措施：{ $list }
incident-notice-contact = 联系我们：{ $contact }

incident-opened = 已立案安全事件：{ $title }（{ $incident }）
    .body =
        已立案安全事件：{ $title }（{ $incident }），级别：{ $grade }，受影响 { $n } 人。
        向主管部门的报告期限已列入期限看板。请在控制台或通过
        GET /v1/incidents/{ $incident } 处置。

incident-report-due-soon = 报告截止 { $due }：安全事件 { $incident }
    .body =
        安全事件 { $title }（{ $incident }）须在 { $due } 前向 { $authority } 报告。
        报告后请通过 POST /v1/incidents/{ $incident }/reports 登记。

incident-report-overdue = 报告已逾期（截止 { $due }）：安全事件 { $incident }
    .body =
        安全事件 { $title }（{ $incident }）应在 { $due } 前向 { $authority } 报告，
        至今未登记为已报告。此邮件为向个人信息保护负责人的升级提醒。

## 依法披露（P15）与转移（P14）。

legal-basis-law = 法律规定
legal-basis-court_order = 法院命令
legal-basis-authority_request = 主管部门的要求
legal-basis-agreement_enforcement = 执行我们与您的协议

disclosure-legal = { $provider }：我们已依法披露您的部分个人信息
    .body =
        我们于 { $at } 依据{ $basis }（文号：{ $reference }）向 { $body } 披露了您的以下个人信息：{ $categories }。

        您可以在隐私中心导出的个人信息中查看每一次披露的记录。

transfer-notice = { $provider }：您的个人信息将转移至 { $successor }
    .body =
        自 { $date }（UTC）起，我们的业务将由 { $successor } 承接，其将接收您的以下个人信息：{ $categories }。
        接收方受协议 { $agreement } 约束，继续履行我们的隐私政策，您依该政策享有的各项权利不变。

        如您不希望您的个人信息被转移，可在该日期前在隐私中心删除您的信息或注销账号。
