//! The one answer every step of a sweep gives, from the sampler to the loops: something to
//! run, nothing yet, or nothing more.

/// What a step of a sweep gives: something to run, nothing yet, or nothing more.
#[derive(Debug, Clone, PartialEq)]
pub enum Next<T> {
    /// This (a point, a trial, an attempt) runs next.
    Run(T),
    /// Nothing to run now: a trial that must end first is still running.
    Wait,
    /// Nothing is left to run; why, when it is worth saying.
    Done(Option<String>),
}
