// Weights of one sample on the events of another, and the uncertainty of a value that is no
// histogram.
neos::neos! {
    pub analysis Small {
        inputs { sig: weighted events[2], bkg: weighted events[2] }
        knobs { bandwidth = 0.1 }
        params {
            nn = mlp(2 => 4 => 1, relu, sigmoid);
            edges = bin_edges(0.0..1.0, bins = 2);
        }
        let s = hist(nn(sig), edges, bandwidth, weights = weights(bkg), scale = 1.0);
        let b = hist(nn(bkg), edges, bandwidth, weights = weights(bkg), scale = 1.0);
        let b_stat = mcstat(0.1 * b);
        model {
            channel sr {
                sample signal = s { normfactor mu }
                sample background = b { staterror stat(b_stat) }
            }
            poi mu;
        }
        loss cls;
        metrics cls;
    }
}

fn main() {}
