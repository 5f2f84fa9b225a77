//! Statements assembled at run time, with `$N` placeholders that SQLite and PostgreSQL both
//! understand. (sqlx's `QueryBuilder` writes `?` for the `Any` driver, which PostgreSQL refuses.)

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, AssertSqlSafe, Encode, Type};

/// A statement being assembled: SQL text and the values bound to its placeholders.
#[derive(Default)]
pub struct SqlBuilder {
    sql: String,
    arguments: AnyArguments,
    bound: usize,
    error: Option<sqlx::error::BoxDynError>,
}

impl SqlBuilder {
    /// Starts a statement with `sql`.
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            ..Self::default()
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends the next placeholder (`$1`, `$2`, …) and binds `value` to it.
    pub fn push_bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any>,
    {
        if let Err(error) = self.arguments.add(value) {
            self.error.get_or_insert(error);
        }
        self.bound += 1;
        self.sql.push('$');
        self.sql.push_str(&self.bound.to_string());
        self
    }

    /// Appends `VALUES (…), (…)`: one parenthesised row per item, whose values `row` binds.
    pub fn push_values<I, F>(&mut self, items: I, mut row: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(&mut Row<'_>, I::Item),
    {
        self.sql.push_str("VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push('(');
            row(
                &mut Row {
                    builder: self,
                    first: true,
                },
                item,
            );
            self.sql.push(')');
        }
        self
    }

    /// The statement, ready for `fetch_*` or `execute`; an error if a value could not be bound.
    pub fn query(self) -> sqlx::Result<sqlx::query::Query<'static, Any, AnyArguments>> {
        let (sql, arguments) = self.finish()?;
        Ok(sqlx::query_with(AssertSqlSafe(sql), arguments))
    }

    /// The statement, its rows read as `O`.
    pub fn query_as<O>(self) -> sqlx::Result<sqlx::query::QueryAs<'static, Any, O, AnyArguments>>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let (sql, arguments) = self.finish()?;
        Ok(sqlx::query_as_with(AssertSqlSafe(sql), arguments))
    }

    /// The statement, the first column of its rows read as `O`.
    pub fn query_scalar<O>(
        self,
    ) -> sqlx::Result<sqlx::query::QueryScalar<'static, Any, O, AnyArguments>>
    where
        (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let (sql, arguments) = self.finish()?;
        Ok(sqlx::query_scalar_with(AssertSqlSafe(sql), arguments))
    }

    /// The SQL text so far (for tests and logs; values are not in it).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    fn finish(self) -> sqlx::Result<(String, AnyArguments)> {
        match self.error {
            Some(error) => Err(sqlx::Error::Encode(error)),
            None => Ok((self.sql, self.arguments)),
        }
    }
}

/// One row of [`SqlBuilder::push_values`].
pub struct Row<'b> {
    builder: &'b mut SqlBuilder,
    first: bool,
}

impl Row<'_> {
    /// Binds the row's next value.
    pub fn push_bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any>,
    {
        if !self.first {
            self.builder.sql.push_str(", ");
        }
        self.first = false;
        self.builder.push_bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut sql = SqlBuilder::new("INSERT INTO t (a, b) ");
        sql.push_values([(1_i64, "x"), (2, "y")], |row, (a, b)| {
            row.push_bind(a).push_bind(b.to_owned());
        });
        sql.push(" ON CONFLICT DO NOTHING WHERE c > ")
            .push_bind(3_i64);
        assert_eq!(
            sql.sql(),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING WHERE c > $5"
        );
    }
}
