//! Where an element of a description came from, so that errors found in later stages point at
//! the user's own source: the `neos!` macro maps a [`Loc`] back to the tokens it came from,
//! the workspace reader to a place in the JSON (`channels[0].samples[1].modifiers[2]`).

/// An index into a table kept by whoever produced the description. `Loc::default()` is fine
/// for descriptions written by hand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc(pub usize);
