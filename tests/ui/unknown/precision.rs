// A network's precision is f32 or f64, and `precision` is its only option.
neos::neos! {
    pub analysis Precise {
        inputs { sig: events[2], bkg: events[2] }
        params {
            nn = mlp(2 => 8 => 1, relu, sigmoid, precision = f16, accuracy = f32);
            edges = bin_edges(0.0..1.0, bins = 2);
        }
        let s = hist(nn(sig), edges, 0.1, scale = 20.0);
        let b = hist(nn(bkg), edges, 0.1, scale = 100.0);
        model {
            channel sr {
                sample signal = s { normfactor mu }
                sample background = b { normsys bkg_norm(lo = 0.9, hi = 1.1) }
            }
            poi mu;
        }
        loss cls;
        metrics cls;
    }
}

fn main() {}
