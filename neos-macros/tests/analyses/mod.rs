//! The analyses the expansion tests and the timing example share.

// Each user takes what it needs.
#![allow(dead_code, clippy::unwrap_used)]

use proc_macro2::TokenStream;

/// The neos paper's analysis; `WIDTH` is replaced by the hidden width.
pub const BLOBS: &str = r#"
    /// The four-blob problem of the neos paper.
    pub analysis Blobs {
        inputs { sig: events[2], bkg_nom: events[2], bkg_up: events[2], bkg_down: events[2] }
        knobs { bandwidth = 0.09, lumi = 10.0 }
        params {
            nn = mlp(2 => WIDTH => WIDTH => 1, relu, sigmoid);
            edges = bin_edges(0.0..1.0, bins = 4, trainable);
        }
        let s = hist(nn(sig), edges, bandwidth, scale = 2.0 * lumi);
        let b = hist(nn(bkg_nom), edges, bandwidth, scale = 10.0 * lumi);
        let bup = hist(nn(bkg_up), edges, bandwidth, scale = 10.0 * lumi);
        let bdn = hist(nn(bkg_down), edges, bandwidth, scale = 10.0 * lumi);
        model {
            channel singlechannel {
                sample signal = s { normfactor mu }
                sample background = b { histosys correlated_bkg_uncertainty(lo = bdn, hi = bup) }
            }
            poi mu;
        }
        loss cls(mu = 1.0), discovery, poi_uncert, bce(nn(sig), nn(bkg_nom), nn(bkg_up), nn(bkg_down));
        metrics cls, discovery, poi_uncert;
    }
"#;

/// A one-bin counting experiment with a trainable cut on one feature.
pub const COUNTING: &str = r#"
    analysis Counting {
        inputs { sig: events[1], bkg: events[1] }
        knobs { bandwidth = 0.1, lumi = 10.0 }
        params {
            cut = scalar(0.5);
            bin = bin_edges(0.0..1.0, bins = 1);
        }
        let s = hist(sigmoid((sig[0] - cut) * 10.0), bin, bandwidth, scale = 5.0 * lumi);
        let b = hist(sigmoid((bkg[0] - cut) * 10.0), bin, bandwidth, scale = 50.0 * lumi);
        model {
            channel sr {
                sample signal = s { normfactor mu }
                sample background = b { normsys bkg_norm(lo = 0.9, hi = 1.1), staterror stat(0.1 * b) }
            }
            poi mu;
            parameter mu { bounds = (0.0, 20.0) }
        }
        loss discovery;
        metrics discovery, poi_uncert;
    }
"#;

pub fn tokens(source: &str) -> TokenStream {
    source.parse().unwrap()
}

pub fn blobs(width: usize) -> TokenStream {
    tokens(&BLOBS.replace("WIDTH", &width.to_string()))
}

/// The counting analysis as tokens.
pub fn counting() -> TokenStream {
    tokens(COUNTING)
}
