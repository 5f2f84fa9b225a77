//! The group's mark: the savepoint each write of a group runs behind, so that a write that fails
//! is undone alone (see the [parent module](super)). It alternates between two names, and a
//! leading write carries its move in front of its own first statement ([`Mark::first`]).

/// The two savepoint names the group's mark alternates between.
const MARKS: [&str; 2] = ["stockmesh_write_0", "stockmesh_write_1"];

/// The statements that move the mark to `MARKS[to]`: release the other name, set this one.
fn move_statements(to: usize) -> String {
    format!(
        "RELEASE SAVEPOINT {}; SAVEPOINT {}",
        MARKS[1 - to],
        MARKS[to]
    )
}

/// A leading write's first statement, alone and behind each move of the mark, built once (keep
/// it in a `static`): [`Mark::first`] picks the text to send.
#[derive(Debug)]
pub struct Leading {
    alone: String,
    moved: [String; 2],
}

impl Leading {
    /// `statement` (one statement, its parameters numbered, e.g. `?1` or `$1`) ready to lead.
    pub fn new(statement: &str) -> Self {
        Self {
            alone: statement.to_owned(),
            moved: [0, 1].map(|to| format!("{}; {statement}", move_statements(to))),
        }
    }

    /// The statement alone, for a write that has no mark to carry (one run by
    /// [`GroupWriter::write`](super::GroupWriter::write), or outside a group).
    pub fn alone(&'static self) -> &'static str {
        &self.alone
    }
}

/// The group's mark as a leading write meets it
/// ([`GroupWriter::write_leading`](super::GroupWriter::write_leading)): a move of the mark may be
/// owed before the write, and goes in front of its first statement.
#[derive(Debug)]
pub struct Mark {
    /// Where the owed move goes, until [`Mark::first`] hands it over.
    owed: Option<usize>,
}

impl Mark {
    /// The text to send as the write's first statement: `statement`, with the owed move of the
    /// mark in front of it on the first call. A leading write sends it before any other
    /// statement; if it fails without having called this, its whole group fails (the writer
    /// cannot tell that it changed nothing), unless it never ran (its caller left first).
    pub fn first(&mut self, statement: &'static Leading) -> &'static str {
        match self.owed.take() {
            Some(to) => &statement.moved[to],
            None => &statement.alone,
        }
    }
}

/// The statements that keep the group's mark, built once from [`MARKS`] (PostgreSQL and SQLite
/// alike run a statement list sent at once).
pub(super) struct MarkStatements {
    /// Begins the group's transaction and sets the first mark, `MARKS[0]`.
    pub(super) begin: String,
    /// `moves[i]` moves the mark to `MARKS[i]` past a write that succeeded; it fails if the
    /// other name is gone (the transaction ended, or a move owed to a leading write was not
    /// made).
    pub(super) moves: [String; 2],
    /// `undo[i]` undoes everything since the mark `MARKS[i]`, which stays and still marks that
    /// state.
    pub(super) undo: [String; 2],
}

/// The statements, built on first use.
pub(super) static STATEMENTS: std::sync::LazyLock<MarkStatements> =
    std::sync::LazyLock::new(|| MarkStatements {
        begin: format!("BEGIN; SAVEPOINT {}", MARKS[0]),
        moves: [0, 1].map(move_statements),
        undo: MARKS.map(|name| format!("ROLLBACK TO SAVEPOINT {name}")),
    });

/// Where the group's mark stands.
#[derive(Debug, Clone, Copy)]
pub(super) struct Position {
    /// The savepoint name it bears (an index into [`MARKS`]).
    pub(super) at: usize,
    /// Whether it marks the transaction's present state (nothing has succeeded since it was set,
    /// or since the last failure was rolled back to it); if not, it must move before the next
    /// write.
    pub(super) holds: bool,
}

impl Position {
    /// Where a group's transaction begins: `MARKS[0]`, set by `BEGIN`, holding.
    pub(super) const START: Self = Self { at: 0, holds: true };

    /// The name the mark must move to before the next write, if it does not hold.
    pub(super) fn owed(&self) -> Option<usize> {
        (!self.holds).then_some(1 - self.at)
    }

    /// The mark was moved to `MARKS[to]`, and holds.
    pub(super) fn move_to(&mut self, to: usize) {
        *self = Self {
            at: to,
            holds: true,
        };
    }
}

impl Mark {
    /// A mark owing the move to `MARKS[to]`, or nothing.
    pub(super) fn owing(to: Option<usize>) -> Self {
        Self { owed: to }
    }

    /// Whether the owed move, if any, was handed over by [`Mark::first`].
    pub(super) fn handed_over(&self) -> bool {
        self.owed.is_none()
    }
}
