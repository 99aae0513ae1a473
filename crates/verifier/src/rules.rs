//! Rules as the platform has them (platform.md §2): a Rule Set is a required Default Response
//! and up to three ordered Rule Groups; a group matches when all its rules hold; the first
//! matching group answers its response, else the Default Response.
//!
//! Rule texts (config file, stored as text):
//!
//! | rule | holds when | source |
//! |---|---|---|
//! | `auth_pass` | the SUN message verified with a new counter | platform: Tag Authentication › Authentication Pass |
//! | `scan_count < N` (`>`, `=`, `!=`) | the tag's scan count, this scan included, compares | platform: Scan Count |
//! | `tamper = open` (`!=`; `open`/`closed`) | the TagTamper status of a scan with a genuine SUN message and `{tt}` in its template compares (`open`: the loop is open now or was ever opened); unknown status (no `{tt}`, no genuine MAC, TagTamper not enabled) makes every tamper rule false | platform: Tamper |
//! | `chip_count < N` (`>`, `=`, `!=`) | the verified chip counter compares (false without a verified scan) | ours |
//! | `date >= T` (`>`, `<`, `<=`; T = `YYYY-MM-DD[THH:MM[:SS]Z]`, UTC) | the time of the scan compares; two give a window | ours |

use serde::{Deserialize, Serialize};

use super::subtags::{Response, Subtag};
use super::timefmt::parse_utc;

mod error;
pub use error::{RuleError, RuleSetError, RulesError};

/// Standard tags answer their default response; authentication tags answer the pass response
/// when the SUN message verifies with a new counter, else the default response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum GroupKind {
    /// Answers its default response; no SUN check.
    Standard,
    /// Checks the SUN message: the pass response when it verifies with a new counter.
    #[default]
    Authentication,
}

impl GroupKind {
    /// `standard` or `authentication`, as in configs and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Standard => "standard",
            GroupKind::Authentication => "authentication",
        }
    }

    /// Reads [`GroupKind::as_str`]'s names back.
    pub fn parse(s: &str) -> Option<GroupKind> {
        match s {
            "standard" => Some(GroupKind::Standard),
            "authentication" => Some(GroupKind::Authentication),
            _ => None,
        }
    }

    /// The default response of a group of this kind when none is configured.
    pub fn default_response(self) -> &'static str {
        match self {
            GroupKind::Standard => "Found",
            GroupKind::Authentication => "Fail",
        }
    }
}

/// One Rule Group: rules (texts as in the config, e.g. `scan_count < 10`, see
/// the table above) that must all hold, and the response answered when they do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RuleGroup {
    /// Rule texts (e.g. `scan_count < 10`); all must hold.
    pub rules: Vec<String>,
    /// The response answered when they do (may hold subtags).
    pub response: String,
}

impl RuleGroup {
    /// Whether the group takes part in its Rule Set: a group with an empty response is not
    /// active, as on the platform ("Until you have added all the data and settings required,
    /// the Rule Group will not be active").
    pub fn is_active(&self) -> bool {
        !self.response.trim().is_empty()
    }
}

/// Most Rule Groups in a Rule Set (the platform's limit).
pub const MAX_RULE_GROUPS: usize = 3;

/// The largest `chip_count` target: the chip's SDM read counter is 3 bytes.
pub const MAX_CHIP_COUNT: u32 = 0xFF_FFFF;

/// A comparison of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=` (or `==`)
    Eq,
    /// `!=`
    Ne,
}

impl Cmp {
    fn parse(s: &str) -> Option<Cmp> {
        Some(match s {
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            "=" | "==" => Cmp::Eq,
            "!=" => Cmp::Ne,
            _ => return None,
        })
    }

    fn holds<T: Ord>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
        }
    }
}

/// TagTamper status (NTAG 424 DNA TT), from a genuine scan's `{tt}` mirror (open when the loop
/// is open now or was ever opened). `None` (unknown: no `{tt}` in the template, no genuine
/// SUN message, or TagTamper not enabled on the tag) makes every tamper rule false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tamper {
    /// The loop is open now or was opened at some time.
    Open,
    /// The loop is closed and was never opened.
    Closed,
}

/// One rule of a Rule Group (the table above).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// `auth_pass`: the SUN message verified with a new counter.
    AuthPass,
    /// `scan_count OP N`: the tag's scan count, this scan included.
    ScanCount(Cmp, u64),
    /// `tamper OP open|closed`: the TagTamper status of a genuine scan.
    Tamper(Cmp, Tamper),
    /// `chip_count OP N`: the verified chip counter (SDMReadCtr).
    ChipCount(Cmp, u32),
    /// `date OP T`: the scan time (T in ms since the Unix epoch, UTC).
    Date(Cmp, u64),
}

/// What rules are evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// The SUN message verified with a new counter.
    pub auth: bool,
    /// The tag's scan count, this scan included.
    pub scount: u64,
    /// The chip counter: the verified one, else the last accepted.
    pub ccount: Option<u32>,
    /// The TagTamper status, when known.
    pub tamper: Option<Tamper>,
    /// The time of the scan (ms since the Unix epoch).
    pub now_ms: u64,
}

impl Rule {
    /// Parses a rule text (`auth_pass`, or `KIND OP VALUE` such as `scan_count < 10`).
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let rule = text.to_string();
        match words.as_slice() {
            ["auth_pass"] => Ok(Rule::AuthPass),
            [kind, op, value] => {
                let Some(cmp) = Cmp::parse(op) else {
                    return Err(RuleError::Comparison { rule });
                };
                let eq_only = matches!(cmp, Cmp::Eq | Cmp::Ne);
                match *kind {
                    "scan_count" if matches!(cmp, Cmp::Le | Cmp::Ge) => {
                        Err(RuleError::ScanCountComparison { rule })
                    }
                    "scan_count" => match value.parse() {
                        Ok(n) => Ok(Rule::ScanCount(cmp, n)),
                        Err(_) => Err(RuleError::ScanCountTarget { rule }),
                    },
                    "chip_count" => match value.parse::<u32>() {
                        Ok(n) if n <= MAX_CHIP_COUNT => Ok(Rule::ChipCount(cmp, n)),
                        _ => Err(RuleError::ChipCountTarget { rule }),
                    },
                    "tamper" if !eq_only => Err(RuleError::TamperComparison { rule }),
                    "tamper" => match *value {
                        "open" => Ok(Rule::Tamper(cmp, Tamper::Open)),
                        "closed" => Ok(Rule::Tamper(cmp, Tamper::Closed)),
                        _ => Err(RuleError::TamperStatus { rule }),
                    },
                    "date" if eq_only => Err(RuleError::DateComparison { rule }),
                    "date" => match parse_utc(value) {
                        Some(t) => Ok(Rule::Date(cmp, t)),
                        None => Err(RuleError::Date { rule }),
                    },
                    _ => Err(RuleError::UnknownKind { rule }),
                }
            }
            _ => Err(RuleError::Unknown { rule }),
        }
    }

    /// Whether the rule holds for these facts; `chip_count` needs a passing scan.
    pub fn holds(&self, f: &Facts) -> bool {
        match *self {
            Rule::AuthPass => f.auth,
            Rule::ScanCount(c, n) => c.holds(f.scount, n),
            // Unknown status: no tamper rule holds.
            Rule::Tamper(c, t) => f.tamper.is_some_and(|s| c.holds(s as u8, t as u8)),
            Rule::ChipCount(c, n) => f.auth && f.ccount.is_some_and(|v| c.holds(v, n)),
            Rule::Date(c, t) => c.holds(f.now_ms, t),
        }
    }
}

/// A compiled Rule Set.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Rule Groups in order: rules that must all hold, and the response answered then.
    pub groups: Vec<(Vec<Rule>, Response)>,
    /// The Default Response, answered when no group matches.
    pub default: Response,
}

impl RuleSet {
    /// Compiles a Rule Set; errors name the rule or response at fault.
    pub fn compile(groups: &[RuleGroup], default: &str) -> Result<RuleSet, RuleSetError> {
        if groups.len() > MAX_RULE_GROUPS {
            return Err(RuleSetError::TooManyGroups {
                count: groups.len(),
            });
        }
        let mut out = Vec::new();
        // A group with an empty response is not active (the platform), so it never answers.
        for g in groups.iter().filter(|g| g.is_active()) {
            if g.rules.is_empty() {
                return Err(RuleSetError::NoRules {
                    response: g.response.clone(),
                });
            }
            let rules = g
                .rules
                .iter()
                .map(|r| Rule::parse(r))
                .collect::<Result<Vec<_>, _>>()?;
            out.push((rules, Response::parse(&g.response)?));
        }
        Ok(RuleSet {
            groups: out,
            default: Response::parse(default)?,
        })
    }

    /// The Rule Groups of a group (or a tag) given its shorthand pass response.
    pub fn effective(
        kind: GroupKind,
        groups: &[RuleGroup],
        pass: Option<&str>,
        default: &str,
    ) -> Result<RuleSet, RuleSetError> {
        match (groups.is_empty(), kind, pass) {
            (true, GroupKind::Authentication, Some(p)) => RuleSet::compile(
                &[RuleGroup {
                    rules: vec!["auth_pass".into()],
                    response: p.to_string(),
                }],
                default,
            ),
            _ => RuleSet::compile(groups, default),
        }
    }

    /// The response the rules give.
    pub fn answer(&self, f: &Facts) -> &Response {
        self.groups
            .iter()
            .find(|(rules, _)| rules.iter().all(|r| r.holds(f)))
            .map(|(_, r)| r)
            .unwrap_or(&self.default)
    }

    /// Whether a response layers the Tag Code's Default Response (`{tagcodedr}`).
    pub fn layers(&self) -> bool {
        self.default.uses(Subtag::TagCodeDr)
            || self.groups.iter().any(|(_, r)| r.uses(Subtag::TagCodeDr))
    }

    /// Whether any rule needs the SUN message verified.
    pub fn uses_auth(&self) -> bool {
        self.groups
            .iter()
            .flat_map(|(r, _)| r)
            .any(|r| matches!(r, Rule::AuthPass | Rule::ChipCount(..)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_texts() {
        assert_eq!(Rule::parse("auth_pass"), Ok(Rule::AuthPass));
        assert_eq!(
            Rule::parse("scan_count  <  10"),
            Ok(Rule::ScanCount(Cmp::Lt, 10))
        );
        assert_eq!(
            Rule::parse("scan_count <= 10"),
            Err(RuleError::ScanCountComparison {
                rule: "scan_count <= 10".into()
            })
        );
        assert!(matches!(
            Rule::parse("tamper > open"),
            Err(RuleError::TamperComparison { rule }) if rule == "tamper > open"
        ));
        let e = Rule::parse("mobile_os = ios").unwrap_err();
        assert!(matches!(&e, RuleError::UnknownKind { .. }));
        assert_eq!(e.rule(), "mobile_os = ios");
        assert_eq!(
            e.to_string(),
            r#"rule "mobile_os = ios": unknown rule kind: use auth_pass, scan_count, tamper, chip_count or date"#
        );
        assert!(matches!(
            Rule::parse("chip_count > 16777216"),
            Err(RuleError::ChipCountTarget { .. })
        ));
        assert!(matches!(Rule::parse("a b"), Err(RuleError::Unknown { .. })));
        assert!(matches!(
            Rule::parse("scan_count ~ 1"),
            Err(RuleError::Comparison { .. })
        ));
        assert!(Rule::parse("date >= 2026-01-01").is_ok());
        assert!(matches!(
            Rule::parse("date >= 2026-02-30"),
            Err(RuleError::Date { .. })
        ));
        assert!(matches!(
            Rule::parse("date = 2026-01-01"),
            Err(RuleError::DateComparison { .. })
        ));
        let f = Facts {
            auth: true,
            scount: 3,
            ccount: Some(5),
            tamper: None,
            now_ms: 0,
        };
        assert!(!Rule::parse("tamper = open").unwrap().holds(&f));
        assert!(!Rule::parse("tamper != open").unwrap().holds(&f));
        assert!(Rule::parse("chip_count > 4").unwrap().holds(&f));
    }

    #[test]
    fn rule_set_errors_name_their_part() {
        let g = |rules: &[&str], response: &str| RuleGroup {
            rules: rules.iter().map(|r| r.to_string()).collect(),
            response: response.into(),
        };
        let four = vec![g(&["auth_pass"], "Pass"); 4];
        let e = RuleSet::compile(&four, "Fail").unwrap_err();
        assert_eq!(e, RuleSetError::TooManyGroups { count: 4 });
        assert_eq!(e.to_string(), "4 rule groups: the platform allows up to 3");
        let e = RuleSet::compile(&[g(&[], "Hi")], "Fail").unwrap_err();
        assert_eq!(
            e,
            RuleSetError::NoRules {
                response: "Hi".into()
            }
        );
        let e = RuleSet::compile(&[g(&["tamper = ajar"], "Hi")], "Fail").unwrap_err();
        assert!(
            matches!(&e, RuleSetError::Rule(RuleError::TamperStatus { rule }) if rule == "tamper = ajar")
        );
        assert_eq!(
            e.to_string(),
            r#"rule "tamper = ajar": the tamper status is open or closed"#
        );
        let e = RuleSet::compile(&[], "{browser}").unwrap_err();
        assert!(matches!(
            e,
            RuleSetError::Response(crate::subtags::ResponseError::NotOnApi { .. })
        ));
    }
}
