// The weights of a sample declared without weights.
neos::neos! {
    pub analysis Small {
        inputs { sig: events[2], bkg: events[2] }
        knobs { bandwidth = 0.1 }
        params {
            nn = mlp(2 => 4 => 1, relu, sigmoid);
            edges = bin_edges(0.0..1.0, bins = 2);
        }
        let s = hist(nn(sig), edges, bandwidth, scale = 20.0);
        let b = hist(nn(bkg), edges, bandwidth, weights = weights(bkg), scale = 1.0);
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
