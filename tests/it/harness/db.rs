//! The shared PostgreSQL server at 127.0.0.1:5432 and [`TestDb`], a fresh database per test.

use super::temp::unique_name;

/// PostgreSQL endpoint used by every test.
pub(crate) const PG_HOST: &str = "127.0.0.1";
pub(crate) const PG_PORT: u16 = 5432;
pub(crate) const PG_USER: &str = "postgres";

/// Connection string for database `db` on the test server.
pub(crate) fn pg_conn_string(db: &str) -> String {
    format!("host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={db} connect_timeout=10")
}

fn pg_admin() -> postgres::Client {
    postgres::Client::connect(&pg_conn_string("postgres"), postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot connect to PostgreSQL at {PG_HOST}:{PG_PORT} as {PG_USER} \
             (run scripts/ensure-postgres): {e}"
        )
    })
}

/// A fresh database with a random name, dropped (WITH (FORCE)) when this value is dropped.
pub(crate) struct TestDb {
    name: String,
}

impl TestDb {
    pub(crate) fn create() -> TestDb {
        let name = unique_name("streamer_test");
        let mut admin = pg_admin();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDb { name }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// libpq-style connection string for this database.
    pub(crate) fn conn_string(&self) -> String {
        pg_conn_string(&self.name)
    }

    /// A new connection to this database.
    pub(crate) fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.conn_string(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to test database {}: {e}", self.name))
    }

    /// The single `bigint` (or castable) value returned by `sql`, e.g. `SELECT count(*) FROM t`.
    pub(crate) fn scalar_i64(&self, sql: &str) -> i64 {
        let row = self
            .client()
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.get::<_, i64>(0)
    }

    /// `SELECT count(*) FROM <table>`.
    pub(crate) fn count(&self, table: &str) -> i64 {
        self.scalar_i64(&format!("SELECT count(*) FROM {table}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        match postgres::Client::connect(&pg_conn_string("postgres"), postgres::NoTls) {
            Ok(mut admin) => {
                if let Err(e) = admin.batch_execute(&sql) {
                    eprintln!("warning: {sql}: {e}");
                }
            }
            Err(e) => eprintln!(
                "warning: cannot connect to drop database {}: {e}",
                self.name
            ),
        }
    }
}
