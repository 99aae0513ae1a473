//! A simulated reader's options (`sim:DIR?latency=15ms&drop=0.1&remove=0.05&seed=7`): what they
//! hold, how they are parsed, and why one is refused.

use std::time::Duration;

use crate::Flaky;

/// A simulated reader's options, written after its directory as a query:
/// `sim:DIR?latency=15ms` (several joined with `&`: `sim:DIR?drop=0.1&seed=7`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimReaderOptions {
    /// Added to every exchange, as the air time and reader overhead of a real reader.
    pub latency: Duration,
    /// A flaky reader: answers lost (`drop=P`), the tag leaving the field and coming back
    /// (`remove=P`), P the fraction of exchanges.
    pub flaky: Flaky,
    /// Seeds the faults (`seed=N`): the same seed gives the same faults at the same
    /// exchanges. Without it, every run draws its own.
    pub seed: Option<u64>,
}

/// The most a flaky reader loses: past it a tag is rarely finished at all.
pub const MAX_FAULT: f64 = 0.5;

/// Why a fraction of exchanges (`drop=P`, `remove=P`) could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FractionError {
    /// Not a number.
    #[error("{value:?} is not a fraction; write one such as 0.1")]
    NotANumber {
        /// The value as given.
        value: String,
        /// What the number reader reported.
        #[source]
        source: std::num::ParseFloatError,
    },
    /// A number outside 0 to [`MAX_FAULT`].
    #[error("{value} is not a fraction from 0 to {max} (of the exchanges); write one such as 0.1")]
    OutOfRange {
        /// The value as given.
        value: String,
        /// The number it reads as.
        fraction: f64,
        /// The largest fraction a flaky reader may lose ([`MAX_FAULT`]).
        max: f64,
    },
}

/// Parses a fraction of exchanges (`0.1`) into parts per million.
fn fraction(v: &str) -> Result<u32, FractionError> {
    let p: f64 = v
        .trim()
        .parse()
        .map_err(|source| FractionError::NotANumber {
            value: v.to_string(),
            source,
        })?;
    if !(0.0..=MAX_FAULT).contains(&p) {
        return Err(FractionError::OutOfRange {
            value: v.to_string(),
            fraction: p,
            max: MAX_FAULT,
        });
    }
    Ok((p * 1_000_000.0).round() as u32)
}

/// A simulated reader option that could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("simulated reader option {option:?}: {problem}")]
pub struct SimOptionError {
    /// The option as given (`name=value`).
    pub option: String,
    /// What is wrong with it.
    #[source]
    pub problem: SimOptionProblem,
}

/// What is wrong with a simulated reader option ([`SimOptionError`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimOptionProblem {
    /// `latency=` is not a duration.
    #[error("{0}; write a duration such as 15ms or 1s")]
    Latency(#[source] humantime::DurationError),
    /// `latency=` longer than a reader takes ([`MAX_LATENCY`]).
    #[error("more than {} s per exchange is not a reader", MAX_LATENCY.as_secs())]
    LatencyTooLong(Duration),
    /// `drop=` or `remove=` is not a fraction a flaky reader may lose.
    #[error(transparent)]
    Fraction(#[from] FractionError),
    /// `seed=` is not a whole number.
    #[error("{value:?} is not a seed; write a whole number such as 7")]
    Seed {
        /// The value as given.
        value: String,
        /// What the number reader reported.
        #[source]
        source: std::num::ParseIntError,
    },
    /// An option the simulated reader does not have (or one without `=`).
    #[error(
        "the options are latency=DURATION, drop=P, remove=P and seed=N (e.g. latency=15ms&drop=0.1&seed=7)"
    )]
    Unknown,
}

/// The longest latency a simulated reader takes per exchange.
pub const MAX_LATENCY: Duration = Duration::from_secs(10);

impl SimReaderOptions {
    /// Parses `latency=15ms&drop=0.1&remove=0.05&seed=7` (durations as `15ms`, `1s`, `500us`;
    /// `drop` and `remove` fractions of the exchanges from 0 to 0.5; `seed` a number).
    pub fn parse(query: &str) -> Result<Self, SimOptionError> {
        let mut o = SimReaderOptions::default();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let bad = |problem: SimOptionProblem| SimOptionError {
                option: part.to_string(),
                problem,
            };
            match part.split_once('=') {
                Some(("latency", v)) => {
                    o.latency = humantime::parse_duration(v.trim())
                        .map_err(|e| bad(SimOptionProblem::Latency(e)))?;
                    if o.latency > MAX_LATENCY {
                        return Err(bad(SimOptionProblem::LatencyTooLong(o.latency)));
                    }
                }
                Some(("drop", v)) => o.flaky.drop_ppm = fraction(v).map_err(|e| bad(e.into()))?,
                Some(("remove", v)) => {
                    o.flaky.remove_ppm = fraction(v).map_err(|e| bad(e.into()))?
                }
                Some(("seed", v)) => {
                    o.seed = Some(v.trim().parse().map_err(|source| {
                        bad(SimOptionProblem::Seed {
                            value: v.to_string(),
                            source,
                        })
                    })?)
                }
                _ => return Err(bad(SimOptionProblem::Unknown)),
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A fraction out of range, or not a number, is refused with the value as given and what
    /// it read as.
    #[test]
    fn a_refused_fraction_carries_the_value() {
        assert_eq!(fraction(" 0.1"), Ok(100_000));
        assert_eq!(fraction("0.5"), Ok(500_000));
        assert_eq!(
            fraction("0.7"),
            Err(FractionError::OutOfRange {
                value: "0.7".into(),
                fraction: 0.7,
                max: MAX_FAULT
            })
        );
        match fraction("ten") {
            Err(FractionError::NotANumber { value, source }) => {
                assert_eq!(value, "ten");
                assert_eq!(Some(&source), "ten".parse::<f64>().err().as_ref());
            }
            other => panic!("{other:?}"),
        }
    }

    /// Each refused option names itself and carries its problem as a typed source: the
    /// fraction's error stays reachable through the chain.
    #[test]
    fn a_refused_option_keeps_its_problem_as_the_source() {
        let e = SimReaderOptions::parse("latency=1ms&remove=0.9").expect_err("refused");
        assert_eq!(e.option, "remove=0.9");
        assert!(
            matches!(
                &e.problem,
                SimOptionProblem::Fraction(FractionError::OutOfRange { value, .. }) if value == "0.9"
            ),
            "{e:?}"
        );
        let problem = e
            .source()
            .and_then(|p| p.downcast_ref::<SimOptionProblem>());
        assert!(
            matches!(
                problem,
                Some(SimOptionProblem::Fraction(FractionError::OutOfRange { .. }))
            ),
            "{problem:?}"
        );
        let problem = |q: &str| SimReaderOptions::parse(q).expect_err("refused").problem;
        assert!(matches!(
            problem("latency=1x"),
            SimOptionProblem::Latency(_)
        ));
        assert_eq!(
            problem("latency=11s"),
            SimOptionProblem::LatencyTooLong(Duration::from_secs(11))
        );
        assert!(matches!(
            problem("seed=-1"),
            SimOptionProblem::Seed { value, .. } if value == "-1"
        ));
        assert_eq!(problem("seed"), SimOptionProblem::Unknown);
        assert_eq!(problem("speed=2"), SimOptionProblem::Unknown);
    }
}
