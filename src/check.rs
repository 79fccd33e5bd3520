//! The items `tributary check` reports. Source and sink each check their half (settings,
//! privileges, topics) and report in this one shape, which `cli` prints.

/// One line of `tributary check` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    pub passed: bool,
    pub what: String,
    pub detail: String,
}

impl CheckItem {
    pub fn pass(what: impl Into<String>, detail: impl Into<String>) -> Self {
        CheckItem {
            passed: true,
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub fn fail(what: impl Into<String>, detail: impl Into<String>) -> Self {
        CheckItem {
            passed: false,
            what: what.into(),
            detail: detail.into(),
        }
    }
}
