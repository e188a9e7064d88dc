//! Samples from files: what is written is read back value for value, and every malformed input
//! is an error naming the file, the column and the row.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use ndarray::{array, Array1, Array2};
use neos_runtime::data::{read_csv, read_npy, read_npy_column, read_root, write_npy, write_root, DataError, Sample};

/// A fresh, empty folder under the test target's scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("neos-data").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checks that `result` failed with a message containing `message`, at `column` and `row`.
fn check<T: std::fmt::Debug>(result: Result<T, DataError>, column: Option<&str>, row: Option<usize>, message: &str) {
    let e = result.unwrap_err();
    assert_eq!(e.column.as_deref(), column, "{e}");
    assert_eq!(e.row, row, "{e}");
    assert!(e.to_string().contains(message), "{e}");
}

#[test]
fn npy_files_round_trip_in_both_widths_and_ranks() {
    let dir = scratch("npy");
    let x = array![[1.0, -2.5], [3.25, 4.0], [5.0, 6.0e-300]];
    write_npy(dir.join("x.npy"), &x).unwrap();
    assert_eq!(read_npy(dir.join("x.npy")).unwrap(), x);
    let single: Array2<f32> = array![[0.5_f32, 1.5], [2.5, 3.5]];
    ndarray_npy::write_npy(dir.join("f32.npy"), &single).unwrap();
    assert_eq!(read_npy(dir.join("f32.npy")).unwrap(), single.mapv(f64::from));
    let w: Array1<f64> = array![0.1, 0.2, 0.3];
    ndarray_npy::write_npy(dir.join("w.npy"), &w).unwrap();
    assert_eq!(read_npy_column(dir.join("w.npy")).unwrap(), w);
    check(read_npy_column(dir.join("x.npy")), None, None, "expected one value per event, found 2 columns");
    let nan = array![[1.0, 2.0], [f64::NAN, 4.0]];
    write_npy(dir.join("nan.npy"), &nan).unwrap();
    check(read_npy(dir.join("nan.npy")), Some("0"), Some(1), "expected a finite number, found NaN");
    std::fs::write(dir.join("text.npy"), "not numpy").unwrap();
    check(read_npy(dir.join("text.npy")), None, None, "expected a NumPy array of f64 or f32 values");
    check(read_npy(dir.join("missing.npy")), None, None, "expected a NumPy array");
}

#[test]
fn csv_columns_are_read_by_name_and_bad_fields_are_located() {
    let dir = scratch("csv");
    let path = dir.join("events.csv");
    std::fs::write(&path, "x, y, weight\n1.0, 2.0, 0.5\n3.0, 4.0, 0.25\n").unwrap();
    assert_eq!(read_csv(&path, &["weight", "x"]).unwrap(), array![[0.5, 1.0], [0.25, 3.0]]);
    check(read_csv(&path, &["x", "z"]), Some("z"), None, "expected the column in the header, found x, y, weight");
    std::fs::write(&path, "x,y\n1,2\n3,abc\n").unwrap();
    check(read_csv(&path, &["x", "y"]), Some("y"), Some(1), "expected a number, found `abc`");
    std::fs::write(&path, "x,y\n1,2\n3\n").unwrap();
    check(read_csv(&path, &["x", "y"]), Some(""), Some(1), "expected a row of 2 fields");
    std::fs::write(&path, "x,y\n1,inf\n").unwrap();
    check(read_csv(&path, &["x", "y"]), Some("y"), Some(0), "expected a finite number, found inf");
}

#[test]
fn root_trees_round_trip_and_refuse_what_they_lack() {
    let dir = scratch("root");
    let path = dir.join("mc.root");
    let (x, y) = ([0.5, -1.0, 2.0], [10.0, 20.0, 30.0]);
    write_root(&path, "events", &[("x", &x), ("y", &y)]).unwrap();
    assert_eq!(read_root(&path, "events", &["y", "x"]).unwrap(), array![[10.0, 0.5], [20.0, -1.0], [30.0, 2.0]]);
    check(
        read_root(&path, "events", &["x", "pt"]),
        Some("pt"),
        None,
        "expected a branch of tree `events`, found only x, y",
    );
    check(read_root(&path, "nominal", &["x"]), None, None, "expected a TTree `nominal`");
    check(
        write_root(dir.join("uneven.root"), "t", &[("a", &x), ("b", &y[..2])]),
        Some("b"),
        None,
        "expected 3 entries",
    );
    // Not ROOT at all, and ROOT's magic bytes on a damaged file: errors, not crashes.
    std::fs::write(dir.join("text.root"), "hello, world").unwrap();
    check(
        read_root(dir.join("text.root"), "events", &["x"]),
        None,
        None,
        "expected a ROOT file (starting with `root`)",
    );
    let mut damaged = std::fs::read(&path).unwrap();
    damaged.truncate(200);
    std::fs::write(dir.join("damaged.root"), damaged).unwrap();
    check(read_root(dir.join("damaged.root"), "events", &["x"]), None, None, "expected a");
}

#[test]
fn weighted_samples_append_their_weights_and_check_them() {
    let events = array![[1.0, 2.0], [3.0, 4.0]];
    let sample = Sample::weighted(events.clone(), array![0.5, 1.5], "mc.npy").unwrap();
    assert_eq!(sample.to_array(), array![[1.0, 2.0, 0.5], [3.0, 4.0, 1.5]]);
    assert_eq!(sample.sum_weights(), 2.0);
    assert_eq!(Sample::new(events.clone()).sum_weights(), 2.0);
    check(
        Sample::weighted(events.clone(), array![1.0], "w.npy"),
        None,
        None,
        "expected one weight per event (2 events), found 1 weights",
    );
    check(
        Sample::weighted(events, array![1.0, f64::NAN], "w.npy"),
        Some("weight"),
        Some(1),
        "expected a finite weight, found NaN",
    );
}
