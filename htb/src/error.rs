//! The scheduler's error type: every refused configuration call says why.

use core::fmt;

use crate::class::ClassId;

/// Why a configuration call was refused. Nothing is changed when an error is
/// returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HtbError {
    /// A class id string did not parse (`major:minor`, hex, each below 0x10000).
    BadClassId(String),
    /// The class id has minor 0 (that names the qdisc, not a class).
    ClassIdIsQdisc(ClassId),
    /// The class id's major differs from the qdisc handle.
    WrongMajor {
        /// The offending id.
        id: ClassId,
        /// The qdisc's major.
        handle: u16,
    },
    /// A class with this id already exists.
    DuplicateClass(ClassId),
    /// No class with this id exists.
    UnknownClass(ClassId),
    /// The parent named does not exist.
    UnknownParent(ClassId),
    /// `rate` is zero (tc: "rate is required").
    ZeroRate(ClassId),
    /// `ceil` is zero.
    ZeroCeil(ClassId),
    /// The burst does not fit tc's 32-bit tick count.
    BurstOutOfRange(ClassId),
    /// Adding this class would make the tree deeper than 8 levels.
    TooDeep(ClassId),
    /// The class still has children (the kernel's "HTB class in use").
    ClassHasChildren(ClassId),
    /// The operation needs a leaf class, but this one is inner.
    NotALeaf(ClassId),
    /// A parameter is out of its range.
    BadParameter(&'static str),
}

impl fmt::Display for HtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HtbError::BadClassId(s) => write!(f, "invalid class id \"{s}\""),
            HtbError::ClassIdIsQdisc(id) => {
                write!(f, "class id {id} has minor 0, which names the qdisc")
            }
            HtbError::WrongMajor { id, handle } => write!(
                f,
                "class id {id} does not belong to qdisc {handle:x}: (major must be {handle:x})"
            ),
            HtbError::DuplicateClass(id) => write!(f, "class {id} already exists"),
            HtbError::UnknownClass(id) => write!(f, "class {id} does not exist"),
            HtbError::UnknownParent(id) => write!(f, "parent class {id} does not exist"),
            HtbError::ZeroRate(id) => write!(f, "class {id}: rate must be greater than zero"),
            HtbError::ZeroCeil(id) => write!(f, "class {id}: ceil must be greater than zero"),
            HtbError::BurstOutOfRange(id) => write!(f, "class {id}: burst out of range"),
            HtbError::TooDeep(id) => write!(f, "class {id}: tree is too deep (at most 8 levels)"),
            HtbError::ClassHasChildren(id) => {
                write!(f, "class {id} is in use: delete its children first")
            }
            HtbError::NotALeaf(id) => write!(f, "class {id} is not a leaf"),
            HtbError::BadParameter(what) => write!(f, "invalid parameter: {what}"),
        }
    }
}

impl std::error::Error for HtbError {}
