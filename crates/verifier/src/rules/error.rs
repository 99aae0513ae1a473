//! Why a rule text, a Rule Set or the rules of a registry entry are refused. Each variant carries the rule (or the group) at
//! fault; its message names the fix.

use crate::subtags::ResponseError;

use super::MAX_RULE_GROUPS;

/// Why a rule text does not parse ([`super::Rule::parse`]); each variant holds the rule text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The comparison is none of `<`, `<=`, `>`, `>=`, `=`, `!=`.
    #[error("rule {rule:?}: the comparison must be <, <=, >, >=, = or !=")]
    Comparison {
        /// The rule text.
        rule: String,
    },
    /// `scan_count` with `<=` or `>=` (the platform's Scan Count rule has neither).
    #[error("rule {rule:?}: scan_count takes <, >, = or != (as the platform's Scan Count rule)")]
    ScanCountComparison {
        /// The rule text.
        rule: String,
    },
    /// A `scan_count` target that is not a whole number.
    #[error("rule {rule:?}: the target must be a whole number")]
    ScanCountTarget {
        /// The rule text.
        rule: String,
    },
    /// A `chip_count` target that is not a whole number up to [`MAX_CHIP_COUNT`](super::MAX_CHIP_COUNT).
    #[error(
        "rule {rule:?}: the target must be a whole number up to {}",
        super::MAX_CHIP_COUNT
    )]
    ChipCountTarget {
        /// The rule text.
        rule: String,
    },
    /// `tamper` with another comparison than `=` or `!=`.
    #[error("rule {rule:?}: tamper takes = or !=")]
    TamperComparison {
        /// The rule text.
        rule: String,
    },
    /// A tamper status other than `open` or `closed`.
    #[error("rule {rule:?}: the tamper status is open or closed")]
    TamperStatus {
        /// The rule text.
        rule: String,
    },
    /// `date` with `=` or `!=`.
    #[error("rule {rule:?}: date takes <, <=, > or >=")]
    DateComparison {
        /// The rule text.
        rule: String,
    },
    /// A date the calendar does not have, or not in the accepted forms.
    #[error("rule {rule:?}: the date must be a day the calendar has, from 1970 to 9999, as YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z (UTC)")]
    Date {
        /// The rule text.
        rule: String,
    },
    /// `KIND OP VALUE` with an unknown kind.
    #[error(
        "rule {rule:?}: unknown rule kind: use auth_pass, scan_count, tamper, chip_count or date"
    )]
    UnknownKind {
        /// The rule text.
        rule: String,
    },
    /// Neither `auth_pass` nor three words.
    #[error("rule {rule:?}: unknown rule: use auth_pass, or KIND OP VALUE (e.g. scan_count < 10)")]
    Unknown {
        /// The rule text.
        rule: String,
    },
}

impl RuleError {
    /// The rule text at fault.
    pub fn rule(&self) -> &str {
        match self {
            RuleError::Comparison { rule }
            | RuleError::ScanCountComparison { rule }
            | RuleError::ScanCountTarget { rule }
            | RuleError::ChipCountTarget { rule }
            | RuleError::TamperComparison { rule }
            | RuleError::TamperStatus { rule }
            | RuleError::DateComparison { rule }
            | RuleError::Date { rule }
            | RuleError::UnknownKind { rule }
            | RuleError::Unknown { rule } => rule,
        }
    }
}

/// Why a Rule Set does not compile ([`super::RuleSet::compile`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleSetError {
    /// More Rule Groups than the platform allows (how many were given).
    #[error("{count} rule groups: the platform allows up to {MAX_RULE_GROUPS}")]
    TooManyGroups {
        /// The number of Rule Groups given.
        count: usize,
    },
    /// An active Rule Group without rules (its response).
    #[error("the rule group answering {response:?} has no rules")]
    NoRules {
        /// The group's response.
        response: String,
    },
    /// A rule does not parse.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// A response (a group's or the Default Response) does not compile.
    #[error(transparent)]
    Response(#[from] ResponseError),
}

/// Why a tag's or group's rules, Default Response or extended data could not be compiled
/// into the registry, or a tag's compiled rules could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// A Rule Set does not compile.
    #[error(transparent)]
    RuleSet(#[from] RuleSetError),
    /// A Default Response or extended data value does not compile.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// A request panicked while changing the tag's state.
    #[error("tag state poisoned")]
    Poisoned,
}
