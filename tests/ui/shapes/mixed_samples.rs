// Events of two samples combined event by event: samples have sizes of their own.
neos::neos! {
    pub analysis Small {
        inputs { sig: events[2], bkg: events[2] }
        knobs { bandwidth = 0.1 }
        params {
            nn = mlp(2 => 4 => 1, relu, sigmoid);
            edges = bin_edges(0.0..1.0, bins = 2);
        }
        let s = hist(nn(sig) - nn(bkg), edges, bandwidth, scale = 20.0);
        let b = hist(nn(bkg), edges, bandwidth, scale = 100.0);
        model {
            channel sr {
                sample signal = s { normfactor mu }
                sample background = b { normsys bkg_norm(lo = 0.9, hi = 1.1) }
            }
            poi mu;
        }
        loss cls;
        metrics cls, discovery;
    }
}

fn main() {}
