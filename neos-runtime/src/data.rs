//! Event samples from files: NumPy `.npy` arrays, CSV tables with a header, and ROOT TTrees
//! with branches chosen by name; each sample with its own number of events and, optionally,
//! one Monte Carlo weight per event.
//!
//! An analysis takes one `[events, columns]` array per input: the features, and for a
//! `weighted` input the weight as a last column ([`Sample::to_array`] builds it). Everything
//! read is checked: a missing file, column or branch, a malformed or non-finite value, columns
//! of different lengths, a weight file of another length than its events. The error names the
//! file, the column and the row (counting from 0 among the events) and says what was expected
//! and what was found.
//!
//! The formats are read by well-kept crates: `ndarray-npy` (NumPy's format, `f64` and `f32`,
//! either byte order), `csv` (RFC 4180, quoting, a header row) and `oxyroot` (ROOT files written
//! by ROOT or uproot: flat branches of `double`, `float` and integer types).

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayView2, Axis};

/// What went wrong reading a sample, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct DataError {
    pub file: PathBuf,
    /// The column (CSV), branch (ROOT) or column index (`.npy`) concerned, if any.
    pub column: Option<String>,
    /// The event (row) concerned, counting from 0, if any.
    pub row: Option<usize>,
    pub message: String,
}

impl DataError {
    fn new(file: &Path, message: impl Into<String>) -> Self {
        DataError { file: file.to_path_buf(), column: None, row: None, message: message.into() }
    }

    fn at(mut self, column: impl Into<String>, row: Option<usize>) -> Self {
        self.column = Some(column.into());
        self.row = row;
        self
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(c) = &self.column {
            write!(f, ", column `{c}`")?;
        }
        if let Some(r) = self.row {
            write!(f, ", row {r}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DataError {}

/// One sample: its events (`[events, features]`) and, for weighted Monte Carlo, one weight per
/// event.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub events: Array2<f64>,
    pub weights: Option<Array1<f64>>,
}

impl Sample {
    /// Unweighted events.
    pub fn new(events: Array2<f64>) -> Self {
        Sample { events, weights: None }
    }

    /// Events with one weight each; `file` names where they came from in errors.
    pub fn weighted(events: Array2<f64>, weights: Array1<f64>, file: impl AsRef<Path>) -> Result<Self, DataError> {
        let file = file.as_ref();
        if weights.len() != events.nrows() {
            return Err(DataError::new(
                file,
                format!("expected one weight per event ({} events), found {} weights", events.nrows(), weights.len()),
            ));
        }
        if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
            return Err(
                DataError::new(file, format!("expected a finite weight, found {}", weights[i])).at("weight", Some(i))
            );
        }
        Ok(Sample { events, weights: Some(weights) })
    }

    /// The number of events.
    pub fn len(&self) -> usize {
        self.events.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.events.nrows() == 0
    }

    /// The sum of the weights (the number of events when unweighted): the sample's expected
    /// yield when its weights are normalised to it.
    pub fn sum_weights(&self) -> f64 {
        self.weights.as_ref().map_or(self.events.nrows() as f64, |w| w.sum())
    }

    /// The array an analysis takes for this sample: the features, then the weight if any.
    pub fn to_array(&self) -> Array2<f64> {
        match &self.weights {
            None => self.events.clone(),
            Some(w) => {
                let column = w.view().insert_axis(Axis(1));
                ndarray::concatenate(Axis(1), &[self.events.view(), column]).unwrap_or_else(|_| self.events.clone())
            }
        }
    }
}

/// Checks that every value is finite, naming the first that is not.
fn check_finite(file: &Path, x: ArrayView2<'_, f64>, names: &[String]) -> Result<(), DataError> {
    match x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((row, col), v)) => {
            let column = names.get(col).cloned().unwrap_or_else(|| col.to_string());
            Err(DataError::new(file, format!("expected a finite number, found {v}")).at(column, Some(row)))
        }
        None => Ok(()),
    }
}

/// A NumPy array of `f64` or `f32`: two dimensions `[events, features]`, or one (`[events]`,
/// read as one feature). Non-finite values are refused.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Array2<f64>, DataError> {
    let path = path.as_ref();
    let why = |e: ndarray_npy::ReadNpyError| {
        DataError::new(path, format!("expected a NumPy array of f64 or f32 values, found {e}"))
    };
    let x: Array2<f64> = match ndarray_npy::read_npy::<_, Array2<f64>>(path) {
        Ok(x) => x,
        Err(first) => {
            if let Ok(x) = ndarray_npy::read_npy::<_, Array2<f32>>(path) {
                x.mapv(f64::from)
            } else if let Ok(x) = ndarray_npy::read_npy::<_, Array1<f64>>(path) {
                x.insert_axis(Axis(1))
            } else if let Ok(x) = ndarray_npy::read_npy::<_, Array1<f32>>(path) {
                x.mapv(f64::from).insert_axis(Axis(1))
            } else {
                return Err(why(first));
            }
        }
    };
    check_finite(path, x.view(), &[])?;
    Ok(x)
}

/// One value per event from a NumPy file (weights): a one-dimensional array, or a
/// two-dimensional one of one column.
pub fn read_npy_column(path: impl AsRef<Path>) -> Result<Array1<f64>, DataError> {
    let path = path.as_ref();
    let x = read_npy(path)?;
    if x.ncols() != 1 {
        return Err(DataError::new(path, format!("expected one value per event, found {} columns", x.ncols())));
    }
    Ok(x.column(0).to_owned())
}

/// The named columns of a CSV file with a header row, in the order asked for.
pub fn read_csv(path: impl AsRef<Path>, columns: &[&str]) -> Result<Array2<f64>, DataError> {
    let path = path.as_ref();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| DataError::new(path, format!("expected a readable CSV file, found {e}")))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| DataError::new(path, format!("expected a header row, found {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut index = Vec::with_capacity(columns.len());
    for c in columns {
        match header.iter().position(|h| h == c) {
            Some(i) => index.push(i),
            None => {
                return Err(DataError::new(
                    path,
                    format!("expected the column in the header, found {}", header.join(", ")),
                )
                .at(*c, None))
            }
        }
    }
    let mut values = Vec::new();
    let mut rows = 0;
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            DataError::new(path, format!("expected a row of {} fields, found {e}", header.len())).at("", Some(row))
        })?;
        for (&i, c) in index.iter().zip(columns) {
            let field = record.get(i).unwrap_or("");
            let v: f64 = field
                .parse()
                .map_err(|_| DataError::new(path, format!("expected a number, found `{field}`")).at(*c, Some(row)))?;
            values.push(v);
        }
        rows += 1;
    }
    let x = Array2::from_shape_vec((rows, columns.len()), values)
        .map_err(|e| DataError::new(path, format!("expected a table, found {e}")))?;
    let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    check_finite(path, x.view(), &names)?;
    Ok(x)
}

/// The named branches of a TTree in a ROOT file, one column each, in the order asked for.
/// Branches of `double`, `float` and integer types are read; others are refused by name.
pub fn read_root(path: impl AsRef<Path>, tree: &str, branches: &[&str]) -> Result<Array2<f64>, DataError> {
    let path = path.as_ref();
    // The reader asserts on a file that is not ROOT; look at the magic bytes first.
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| DataError::new(path, format!("expected a readable ROOT file, found {e}")))?;
    if &magic != b"root" {
        return Err(DataError::new(path, format!("expected a ROOT file (starting with `root`), found {magic:?}")));
    }
    let read = || -> Result<Array2<f64>, DataError> {
        let mut file = oxyroot::RootFile::open(path)
            .map_err(|e| DataError::new(path, format!("expected a readable ROOT file, found {e}")))?;
        let t =
            file.get_tree(tree).map_err(|e| DataError::new(path, format!("expected a TTree `{tree}`, found {e}")))?;
        let entries = usize::try_from(t.entries()).unwrap_or(0);
        let mut x = Array2::<f64>::zeros((entries, branches.len()));
        for (k, name) in branches.iter().enumerate() {
            let Some(b) = t.branch(name) else {
                let found: Vec<String> = t.branches().map(|b| b.name().to_string()).collect();
                return Err(DataError::new(
                    path,
                    format!("expected a branch of tree `{tree}`, found only {}", found.join(", ")),
                )
                .at(*name, None));
            };
            let kind = b.item_type_name();
            let bad =
                |e: String| DataError::new(path, format!("expected values of type {kind}, found {e}")).at(*name, None);
            let values: Vec<f64> = match kind.as_str() {
                "double" | "Double_t" => b.as_iter::<f64>().map_err(|e| bad(e.to_string()))?.collect(),
                "float" | "Float_t" => b.as_iter::<f32>().map_err(|e| bad(e.to_string()))?.map(f64::from).collect(),
                "int32_t" | "int" | "Int_t" => {
                    b.as_iter::<i32>().map_err(|e| bad(e.to_string()))?.map(f64::from).collect()
                }
                "uint32_t" | "UInt_t" => b.as_iter::<u32>().map_err(|e| bad(e.to_string()))?.map(f64::from).collect(),
                "int16_t" | "short" | "Short_t" => {
                    b.as_iter::<i16>().map_err(|e| bad(e.to_string()))?.map(f64::from).collect()
                }
                // Integers beyond 2^53 lose their last digits as f64; counts and flags do not.
                "int64_t" | "Long64_t" => {
                    b.as_iter::<i64>().map_err(|e| bad(e.to_string()))?.map(|v| v as f64).collect()
                }
                "bool" | "Bool_t" => {
                    b.as_iter::<bool>().map_err(|e| bad(e.to_string()))?.map(|v| f64::from(u8::from(v))).collect()
                }
                other => {
                    return Err(DataError::new(
                        path,
                        format!("expected a branch of numbers (double, float, integers, bool), found type {other}"),
                    )
                    .at(*name, None))
                }
            };
            if values.len() != entries {
                return Err(DataError::new(
                    path,
                    format!("expected {entries} entries as the tree has, found {}", values.len()),
                )
                .at(*name, None));
            }
            x.column_mut(k).assign(&Array1::from(values));
        }
        Ok(x)
    };
    // The reader may still panic on a damaged file past its header: that is reported as an
    // error of this file, not a crash of the program reading it.
    let x = std::panic::catch_unwind(read).map_err(|_| {
        DataError::new(path, "expected a readable ROOT file, found a damaged one (the reader failed)")
    })??;
    let names: Vec<String> = branches.iter().map(|b| b.to_string()).collect();
    check_finite(path, x.view(), &names)?;
    Ok(x)
}

/// Writes an `[events, features]` array as a NumPy `.npy` file (`f64`, little-endian).
pub fn write_npy(path: impl AsRef<Path>, x: &Array2<f64>) -> Result<(), DataError> {
    let path = path.as_ref();
    ndarray_npy::write_npy(path, x).map_err(|e| DataError::new(path, format!("expected to write the array, found {e}")))
}

/// Writes columns of equal length as the `double` branches of a TTree `tree` in a new ROOT
/// file.
pub fn write_root(path: impl AsRef<Path>, tree: &str, columns: &[(&str, &[f64])]) -> Result<(), DataError> {
    let path = path.as_ref();
    if let Some((name, c)) = columns.iter().find(|(_, c)| c.len() != columns[0].1.len()) {
        return Err(DataError::new(
            path,
            format!("expected {} entries like the first branch, found {}", columns[0].1.len(), c.len()),
        )
        .at(*name, None));
    }
    let name = path.to_str().ok_or_else(|| DataError::new(path, "expected a path of UTF-8 characters"))?;
    let write = || -> Result<(), DataError> {
        let err = |e: String| DataError::new(path, format!("expected to write the tree, found {e}"));
        let mut file = oxyroot::RootFile::create(name).map_err(|e| err(e.to_string()))?;
        let mut t = oxyroot::WriterTree::new(tree);
        for (branch, values) in columns {
            // The writer keeps its branches' iterators past this borrow: they own their values.
            #[allow(clippy::unnecessary_to_owned)]
            t.new_branch(*branch, values.to_vec().into_iter());
        }
        t.write(&mut file).map_err(|e| err(e.to_string()))?;
        // The file is complete on disk only once it is closed and dropped.
        file.close().map_err(|e| err(e.to_string()))
    };
    std::panic::catch_unwind(write)
        .map_err(|_| DataError::new(path, "expected to write the tree, found the writer failing"))?
}
