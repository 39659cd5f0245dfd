//! Scratch databases for tests that start real Conman processes (feature
//! `scratch`, dev-only): those processes use the database's default schema,
//! so each test gets a whole database of its own on the server named by
//! `CONMAN_TEST_DATABASE_URL`.
//!
//! Invariant: a [`ScratchDatabase`] drops its database when it goes out of
//! scope — even when the test panics — with `WITH (FORCE)`, which ends the
//! connections of any process still attached, so a run leaves nothing
//! behind. Without the variable [`scratch_database`] prints one "skipped"
//! line and the test returns; CI always sets it.

use sqlx::{Connection as _, Executor as _, PgConnection};

/// The variable naming the test server (any database on it: the scratch
/// databases are created beside it).
pub const TEST_DATABASE_URL_VAR: &str = "CONMAN_TEST_DATABASE_URL";

/// A fresh, empty database, dropped on drop.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// Creates a scratch database `conman_t_<uuid>`, or returns `None` after
/// printing "skipped: CONMAN_TEST_DATABASE_URL not set". Panics if the
/// server refuses (a test cannot go on without it).
pub async fn scratch_database() -> Option<ScratchDatabase> {
    let admin_url = match std::env::var(TEST_DATABASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            eprintln!("skipped: {TEST_DATABASE_URL_VAR} not set");
            return None;
        }
    };
    let name = format!("conman_t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = PgConnection::connect(&admin_url).await.expect("the test database server accepts connections");
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.expect("the scratch database is created");
    let _ = conn.close().await;
    let url = with_database(&admin_url, &name);
    Some(ScratchDatabase { admin_url, name, url })
}

impl ScratchDatabase {
    /// The URL of the scratch database (for `CONMAN_DATABASE_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside the test's runtime, which cannot block on a
        // future: the cleanup gets a thread and a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let mut conn = PgConnection::connect(&admin_url).await?;
                conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await?;
                conn.close().await
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("warning: could not drop the scratch database {}: {err}", self.name),
            Err(_) => eprintln!("warning: dropping the scratch database {} panicked", self.name),
        }
    }
}

/// `url` with its database (the path) replaced by `name`, keeping any
/// query parameters.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split_once('/').map_or(before_query, |(authority, _)| authority);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced_and_the_rest_kept() {
        let cases = [
            ("postgres://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/x"),
            ("postgres://u:p@db/test?sslmode=disable", "postgres://u:p@db/x?sslmode=disable"),
            ("postgresql://db", "postgresql://db/x"),
            ("postgres://db?application_name=a", "postgres://db/x?application_name=a"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "x"), expected, "{url}");
        }
    }
}
