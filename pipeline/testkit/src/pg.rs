//! A fresh, migrated PostgreSQL database per test, so tests run in parallel and never see each
//! other's rows.

use ttlc_core::config::Config;

/// The admin connection (a role with CREATEDB): `TTLC_TEST_DATABASE_URL` or the local stack's.
pub fn pg_admin_url() -> String {
    std::env::var("TTLC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://ttlc:ttlc@127.0.0.1:5432/ttlc".into())
}

/// One test's database.
#[derive(Debug)]
pub struct PgDb {
    pub name: String,
    pub url: String,
}

impl PgDb {
    /// Creates a database named `ttlc_t_<uuid>` and applies the archive migrations to it.
    pub async fn create() -> PgDb {
        let name = format!("ttlc_t_{}", uuid::Uuid::new_v4().simple());
        admin(&format!("CREATE DATABASE {name}")).await;
        let base = pg_admin_url();
        let cut = base.rfind('/').expect("database URL has a path");
        let db = PgDb { url: format!("{}/{name}", &base[..cut]), name };
        ttlc_archive::migrate_postgres(&db.url).await.expect("migrations apply");
        db
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// A default config pointed at this database, migrations already applied.
    pub fn config(&self) -> Config {
        let mut c = Config::default();
        c.postgres.url = self.url.clone();
        c.postgres.migrate_on_start = false;
        c.postgres.connect_timeout_ms = 2_000;
        c.postgres.write_timeout_ms = 10_000;
        c
    }

    /// Drops the database. Cleanup only: an autovacuum worker in the fresh database (a superuser
    /// process) makes a forced drop fail, and a leftover `ttlc_t_*` database is harmless, so
    /// failure is reported, not fatal.
    pub async fn drop_db(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = connect(&pg_admin_url()).await.batch_execute(&sql).await {
            eprintln!("note: test database {} left behind: {error}", self.name);
        }
    }
}

/// A client for `url`, its connection driven by a background task.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

async fn admin(sql: &str) {
    connect(&pg_admin_url()).await.batch_execute(sql).await.expect(sql);
}
