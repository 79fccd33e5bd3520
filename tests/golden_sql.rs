//! Golden tests for the project language: every `testdata/sql/*.sql` is parsed and planned
//! against the real MariaDB (tables from `testdata/sql/schema.sql`), and the `explain` output or
//! the error text must equal `testdata/sql/<name>.out`.
//!
//! `TRIBUTARY_BLESS=1 cargo test --test golden_sql` rewrites the expectations; review the diff.

mod common;

use std::path::{Path, PathBuf};

use tributary::project::ProjectFile;

async fn plan_or_error(path: &Path) -> String {
    let project = match ProjectFile::load(path) {
        Ok(project) => project,
        Err(e) => return format!("error: {e}\n"),
    };
    let mut conn = common::mariadb().await;
    let catalog = tributary::source::catalog::load_for_project(&mut conn, &project)
        .await
        .expect("catalog loads");
    match tributary::plan::plan(project, &catalog) {
        Ok(plan) => plan.explain(),
        Err(e) => format!("error: {e}\n"),
    }
}

#[tokio::test]
async fn project_files_plan_as_expected() {
    // SAFETY: this test binary has a single test, so no other thread reads the environment.
    unsafe { std::env::set_var("TRIBUTARY_GOLDEN_PASSWORD", "") };

    let mut conn = common::mariadb().await;
    let schema = std::fs::read_to_string("testdata/sql/schema.sql").expect("schema.sql");
    common::run_sql(&mut conn, &schema).await;

    let bless = std::env::var("TRIBUTARY_BLESS").is_ok_and(|v| v == "1");
    let mut files: Vec<PathBuf> = std::fs::read_dir("testdata/sql")
        .expect("testdata/sql")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql") && !p.ends_with("schema.sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 60, "the golden corpus is all there");

    let mut failures = Vec::new();
    let mut errors = 0;
    for file in &files {
        let actual = plan_or_error(file).await;
        if actual.starts_with("error: ") {
            errors += 1;
        }
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(
            name.starts_with("err_"),
            actual.starts_with("error: "),
            "{name}: files named err_* must fail and others must plan; got:\n{actual}"
        );
        let expected_path = file.with_extension("out");
        if bless {
            std::fs::write(&expected_path, &actual).expect("write expectation");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "--- {}\nexpected:\n{expected}\nactual:\n{actual}",
                expected_path.display()
            ));
        }
    }
    assert!(errors >= 30, "at least 30 error cases, found {errors}");
    assert!(
        failures.is_empty(),
        "{} golden files differ (TRIBUTARY_BLESS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
