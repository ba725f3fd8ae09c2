//! Refusals → gRPC statuses, the one place where the hub's errors get their code, message and google.rpc error
//! details (docs/errors.md; the reason codes are `doudi.v1.ErrorReason`, proto/doudi/v1/errors.proto).
//!
//! Every status the hub builds goes through [`Refusal`]: code, [`ErrorReason`], English message, and on the wire a
//! `google.rpc.Status` in `grpc-status-details-bin` holding, in this order, `ErrorInfo` (reason, domain
//! [`ERROR_DOMAIN`], metadata), `BadRequest` (INVALID_FIELD: one violation per bad field), `RetryInfo` (with
//! [`Refusal::retry_after`]; also the `retry-after-ms` trailer), `QuotaFailure` (QUOTA_EXCEEDED) and
//! `LocalizedMessage` ([`LOCALE`], the Chinese text of the reason, built here from the same values). Handlers return
//! `Status` (via `?` and `From`); the mapping of [`HubError`] is exhaustive, with no wildcard arm. Client-facing
//! messages say what the client did wrong and nothing about internals; internal causes go to the log.

use std::collections::HashMap;
use std::time::Duration;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};
use tonic_types::{
    BadRequest, ErrorDetail, ErrorInfo, FieldViolation, LocalizedMessage, QuotaFailure, RetryInfo, StatusExt,
};

pub use super::pb::ErrorReason;
use crate::domain::fact::FieldError;
use crate::hub::HubError;

/// `google.rpc.ErrorInfo.domain` of every refusal: the API's package, the same on every hub. Not the deployment's
/// trust domain: clients compare (domain, reason) with constants compiled into them, and one client may talk to the
/// hubs of several cities.
pub const ERROR_DOMAIN: &str = "doudi.v1";

/// Locale of the `google.rpc.LocalizedMessage` beside the English message.
pub const LOCALE: &str = "zh-CN";

/// Trailer with the advised wait in whole milliseconds (the same as `RetryInfo.retry_delay`), for clients that
/// predate the error details.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// Most field violations listed (in the message and in `BadRequest`); the count of the others is said in the
/// message. Bounds the status's size: trailers must stay well under a client's metadata limit (grpc-java: 8 KiB).
pub const MAX_VIOLATIONS: usize = 10;

/// The wait advised where no better figure is known: a concurrency limit, a hub shutting down, the database
/// unavailable.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(1);

/// One refusal on its way to the client. Build with [`Refusal::new`], [`Refusal::invalid`] or
/// [`Refusal::invalid_fields`], add what applies, and turn it into a `Status` (`Status::from`).
#[derive(Debug, Clone)]
pub struct Refusal {
    code: Code,
    reason: ErrorReason,
    message: String,
    /// (field path, reason), INVALID_FIELD only.
    violations: Vec<(String, String)>,
    retry: Option<Duration>,
    /// `ErrorInfo.metadata` (lower_snake keys, values as text); also the parameters of the Chinese message.
    info: Vec<(&'static str, String)>,
    /// `QuotaFailure` violation: (subject, description).
    quota: Option<(String, String)>,
    /// ASCII trailers besides `retry-after-ms` (e.g. `doudi-resume-cursor`).
    trailers: Vec<(&'static str, String)>,
}

impl Refusal {
    /// A refusal with `code`, `reason` and the English `message`, without further details.
    pub fn new(code: Code, reason: ErrorReason, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason,
            message: message.into(),
            violations: Vec::new(),
            retry: None,
            info: Vec::new(),
            quota: None,
            trailers: Vec::new(),
        }
    }

    /// INVALID_ARGUMENT, INVALID_FIELD: one bad field. Message `"{field}: {reason}"`; `BadRequest` with one violation.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Refusal {
        Refusal::invalid_fields(vec![(field.into(), reason.into())])
    }

    /// INVALID_ARGUMENT, INVALID_FIELD: every bad field of a request, in request order. Message: the fields as
    /// `"{field}: {reason}"` joined by `"; "`; `BadRequest` with one violation each. At most [`MAX_VIOLATIONS`] are
    /// listed, the message ending with `"; and N more invalid fields"` past that, and `ErrorInfo.metadata`
    /// `invalid_fields` giving the total. `violations` should not be empty (an empty list still gives a valid
    /// status, with the message "invalid request").
    pub fn invalid_fields(mut violations: Vec<(String, String)>) -> Refusal {
        let total = violations.len();
        violations.truncate(MAX_VIOLATIONS);
        let mut message = if violations.is_empty() {
            "invalid request".to_owned()
        } else {
            violations.iter().map(|(f, r)| format!("{f}: {r}")).collect::<Vec<_>>().join("; ")
        };
        if total > violations.len() {
            message.push_str(&format!("; and {} more invalid fields", total - violations.len()));
        }
        let mut r = Refusal::new(Code::InvalidArgument, ErrorReason::InvalidField, message);
        r.violations = violations;
        if total > MAX_VIOLATIONS {
            r = r.info("invalid_fields", total);
        }
        r
    }

    /// Advise retrying after `wait`: `RetryInfo.retry_delay` and the `retry-after-ms` trailer (at least 1 ms).
    pub fn retry_after(mut self, wait: Duration) -> Refusal {
        self.retry = Some(wait);
        self
    }

    /// One `ErrorInfo.metadata` entry (documented per reason in errors.proto). A later value for the same key wins.
    pub fn info(mut self, key: &'static str, value: impl ToString) -> Refusal {
        self.info.retain(|(k, _)| *k != key);
        self.info.push((key, value.to_string()));
        self
    }

    /// A `QuotaFailure` violation (QUOTA_EXCEEDED): `subject` such as `agency:education`, and its description.
    pub fn quota(mut self, subject: impl Into<String>, description: impl Into<String>) -> Refusal {
        self.quota = Some((subject.into(), description.into()));
        self
    }

    /// An ASCII trailer (metadata) besides the details, e.g. `doudi-resume-cursor`. Values that are not valid
    /// header text are left out.
    pub fn trailer(mut self, key: &'static str, value: impl ToString) -> Refusal {
        self.trailers.push((key, value.to_string()));
        self
    }

    /// The same refusal with its English message rewritten (e.g. prefixed with how far a stream got).
    pub fn rephrase(mut self, f: impl FnOnce(&str) -> String) -> Refusal {
        self.message = f(&self.message);
        self
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn reason(&self) -> ErrorReason {
        self.reason
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    fn info_value(&self, key: &str) -> Option<&str> {
        self.info.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    /// The Chinese message of the LocalizedMessage: a fixed sentence per reason, with the field paths, the wait and
    /// the metadata values filled in (the English message stays the detailed one).
    fn zh_message(&self) -> String {
        let v = |key: &str| self.info_value(key).unwrap_or("?").to_owned();
        let wait = self.retry.map(|d| format!("请在 {} 毫秒后重试。", retry_ms(d))).unwrap_or_default();
        let processed = self
            .info_value("facts_processed")
            .map(|n| format!("本流此前的 {n} 条事实已处理，请从第 {n} 条起重发。"))
            .unwrap_or_default();
        let resume = self.info_value("resume_cursor").map(|c| format!("请从游标 {c} 续订。")).unwrap_or_default();
        let text = match self.reason {
            ErrorReason::InvalidField => {
                let fields: Vec<&str> = self.violations.iter().map(|(f, _)| f.as_str()).collect();
                format!("请求中有字段无效：{}。各字段的原因见 BadRequest。", fields.join("、"))
            }
            ErrorReason::MalformedRequest => {
                "请求不是该方法所用类型的有效 protobuf 消息（字节损坏，或字符串字段含无效 UTF-8）。".to_owned()
            }
            ErrorReason::ClientCertificateRejected => {
                "客户端证书未通过身份认证：须使用本枢纽信任域内已登记机构的证书（双向 TLS）。".to_owned()
            }
            ErrorReason::PermissionDeniedByPolicy => {
                "访问策略不允许本机构执行此操作，或请求超出本机构的辖区。".to_owned()
            }
            ErrorReason::ResourceNotFound => "未找到所请求的对象，或其中没有调用方可查看的数据。".to_owned(),
            ErrorReason::AlreadyExists => "该对象已存在，且内容不同。".to_owned(),
            ErrorReason::PreconditionFailed => "枢纽当前的状态不允许此操作。".to_owned(),
            ErrorReason::CursorOutOfRange => "after_cursor 超出变更日志的范围，请按说明中的游标重新订阅。".to_owned(),
            ErrorReason::QuotaExceeded => {
                format!("机构 {} 超出每秒 {} 次的请求配额。", v("agency"), v("quota_per_second"))
            }
            ErrorReason::ConcurrencyLimitExceeded => {
                format!("机构 {} 同时打开的流已达上限（{} 个），请待其中一个结束后重试。", v("agency"), v("limit"))
            }
            ErrorReason::MessageTooLarge => "请求消息超过大小上限，请拆分批次。".to_owned(),
            ErrorReason::ResponseTooLarge => "应答超过单次上限，请使用 page_size 分页读取。".to_owned(),
            ErrorReason::WatchTooSlow => "订阅方接收过慢，订阅已被终止。".to_owned(),
            ErrorReason::HubShuttingDown => "枢纽正在关闭，请重新连接（可连接其他副本）。".to_owned(),
            ErrorReason::StorageUnavailable => "数据库暂时不可用，请求未执行。".to_owned(),
            ErrorReason::InternalError => "枢纽内部错误，请求未执行。".to_owned(),
            ErrorReason::Unspecified => "请求被拒绝。".to_owned(),
        };
        format!("{text}{processed}{resume}{wait}")
    }
}

/// Whole milliseconds of a wait, at least 1 (a zero wait would read as "no hint").
fn retry_ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl From<Refusal> for Status {
    fn from(r: Refusal) -> Status {
        let mut details = Vec::with_capacity(5);
        let metadata: HashMap<String, String> = r.info.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        details.push(ErrorDetail::ErrorInfo(ErrorInfo::new(r.reason.as_str_name(), ERROR_DOMAIN, metadata)));
        if !r.violations.is_empty() {
            let violations: Vec<FieldViolation> =
                r.violations.iter().map(|(f, why)| FieldViolation::new(f.clone(), why.clone())).collect();
            details.push(ErrorDetail::BadRequest(BadRequest::new(violations)));
        }
        if let Some(wait) = r.retry {
            details.push(ErrorDetail::RetryInfo(RetryInfo::new(Some(wait))));
        }
        if let Some((subject, description)) = &r.quota {
            details.push(ErrorDetail::QuotaFailure(QuotaFailure::with_violation(subject.clone(), description.clone())));
        }
        details.push(ErrorDetail::LocalizedMessage(LocalizedMessage::new(LOCALE, r.zh_message())));

        let mut trailers = MetadataMap::new();
        if let Some(wait) = r.retry {
            trailers.insert(RETRY_AFTER_MS, MetadataValue::from(retry_ms(wait)));
        }
        for (key, value) in &r.trailers {
            if let Ok(v) = value.parse() {
                trailers.insert(*key, v);
            }
        }
        Status::with_error_details_vec_and_metadata(r.code, r.message, details, trailers)
    }
}

impl From<HubError> for Refusal {
    fn from(e: HubError) -> Refusal {
        use ErrorReason as R;
        match e {
            HubError::InvalidArgument { field, reason } => Refusal::invalid(field, reason),
            HubError::PermissionDenied(m) => Refusal::new(Code::PermissionDenied, R::PermissionDeniedByPolicy, m),
            HubError::NotFound(m) => Refusal::new(Code::NotFound, R::ResourceNotFound, m),
            HubError::FailedPrecondition(m) => Refusal::new(Code::FailedPrecondition, R::PreconditionFailed, m),
            HubError::ResourceExhausted(m) => Refusal::new(Code::ResourceExhausted, R::ResponseTooLarge, m),
            HubError::AlreadyExists(m) => Refusal::new(Code::AlreadyExists, R::AlreadyExists, m),
            HubError::OutOfRange(m) => Refusal::new(Code::OutOfRange, R::CursorOutOfRange, m),
            HubError::Store(e) if e.is_transient() => {
                tracing::warn!(error = %e, "database unavailable");
                Refusal::new(
                    Code::Unavailable,
                    R::StorageUnavailable,
                    "database unavailable; the request was not applied: retry",
                )
                .retry_after(DEFAULT_RETRY)
            }
            HubError::Store(e) => {
                tracing::error!(error = %e, "store error");
                Refusal::new(Code::Internal, R::InternalError, "internal storage error; the request was not applied")
            }
            HubError::Keys(e) => {
                tracing::error!(error = %e, "key error");
                Refusal::new(Code::Internal, R::InternalError, "internal key error")
            }
        }
    }
}

impl From<HubError> for Status {
    fn from(e: HubError) -> Status {
        Refusal::from(e).into()
    }
}

/// INVALID_ARGUMENT (INVALID_FIELD) naming the field of `e`.
pub fn invalid_field(e: FieldError) -> Status {
    Refusal::invalid(e.field, e.reason).into()
}

/// INVALID_ARGUMENT (INVALID_FIELD) naming the field: [`Refusal::invalid`] as a `Status`.
pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Refusal::invalid(field, reason.to_string()).into()
}

/// INTERNAL (INTERNAL_ERROR) with `message`; the cause belongs in the log, not here.
pub fn internal(message: impl Into<String>) -> Status {
    Refusal::new(Code::Internal, ErrorReason::InternalError, message).into()
}

/// UNAVAILABLE (HUB_SHUTTING_DOWN) with `message`, retry after [`DEFAULT_RETRY`].
pub fn shutting_down(message: impl Into<String>) -> Refusal {
    Refusal::new(Code::Unavailable, ErrorReason::HubShuttingDown, message).retry_after(DEFAULT_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reason strings are the proto enum's value names (errors.proto), UPPER_SNAKE, and parse back.
    #[test]
    fn reasons_are_the_proto_value_names() {
        assert_eq!(ErrorReason::InvalidField.as_str_name(), "INVALID_FIELD");
        assert_eq!(ErrorReason::QuotaExceeded.as_str_name(), "QUOTA_EXCEEDED");
        assert_eq!(ErrorReason::PermissionDeniedByPolicy.as_str_name(), "PERMISSION_DENIED_BY_POLICY");
        for n in 1..=16 {
            let r = ErrorReason::try_from(n).unwrap();
            let s = r.as_str_name();
            assert!(s.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{s}");
            assert_eq!(ErrorReason::from_str_name(s), Some(r));
        }
    }

    #[test]
    fn two_bad_fields_give_two_violations_and_a_chinese_message_naming_both() {
        let s: Status = Refusal::invalid_fields(vec![
            ("warnings[0].id_number".into(), "check digit".into()),
            ("warnings[2].reason".into(), "is required".into()),
        ])
        .into();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "warnings[0].id_number: check digit; warnings[2].reason: is required");
        let d = s.get_error_details();
        let info = d.error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("INVALID_FIELD", "doudi.v1"));
        let v = &d.bad_request().unwrap().field_violations;
        assert_eq!(v.len(), 2);
        assert_eq!((v[1].field.as_str(), v[1].description.as_str()), ("warnings[2].reason", "is required"));
        let zh = d.localized_message().unwrap();
        assert_eq!(zh.locale, "zh-CN");
        assert!(zh.message.contains("warnings[0].id_number、warnings[2].reason"), "{}", zh.message);
        assert!(d.retry_info().is_none());
        assert!(s.metadata().get(RETRY_AFTER_MS).is_none());
    }

    #[test]
    fn a_retry_hint_is_both_retry_info_and_the_old_trailer() {
        let s: Status = Refusal::new(Code::ResourceExhausted, ErrorReason::QuotaExceeded, "over")
            .info("agency", "education")
            .info("quota_per_second", 2)
            .quota("agency:education", "2 requests per second")
            .retry_after(Duration::from_millis(250))
            .into();
        let d = s.get_error_details();
        assert_eq!(d.retry_info().unwrap().retry_delay, Some(Duration::from_millis(250)));
        assert_eq!(s.metadata().get(RETRY_AFTER_MS).unwrap(), "250");
        assert_eq!(d.error_info().unwrap().metadata.get("agency").map(String::as_str), Some("education"));
        assert_eq!(d.quota_failure().unwrap().violations[0].subject, "agency:education");
        let zh = &d.localized_message().unwrap().message;
        assert!(zh.contains("机构 education 超出每秒 2 次") && zh.contains("250 毫秒"), "{zh}");
    }

    #[test]
    fn every_hub_error_gets_error_info_and_a_chinese_message() {
        let cases = [
            (HubError::invalid("as_of", "bad date"), Code::InvalidArgument, "INVALID_FIELD"),
            (HubError::PermissionDenied("no".into()), Code::PermissionDenied, "PERMISSION_DENIED_BY_POLICY"),
            (HubError::NotFound("no".into()), Code::NotFound, "RESOURCE_NOT_FOUND"),
            (HubError::FailedPrecondition("no".into()), Code::FailedPrecondition, "PRECONDITION_FAILED"),
            (HubError::ResourceExhausted("no".into()), Code::ResourceExhausted, "RESPONSE_TOO_LARGE"),
            (HubError::AlreadyExists("no".into()), Code::AlreadyExists, "ALREADY_EXISTS"),
            (HubError::OutOfRange("no".into()), Code::OutOfRange, "CURSOR_OUT_OF_RANGE"),
        ];
        for (e, code, reason) in cases {
            let s: Status = e.into();
            assert_eq!(s.code(), code);
            let d = s.get_error_details();
            assert_eq!(d.error_info().unwrap().reason, reason);
            assert_eq!(d.localized_message().unwrap().locale, "zh-CN");
            // RESPONSE_TOO_LARGE is not cured by waiting: no RetryInfo.
            assert!(d.retry_info().is_none(), "{reason}");
        }
    }
}
