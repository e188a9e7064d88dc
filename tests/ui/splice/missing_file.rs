// A workspace file that does not exist.
neos::neos! {
    pub analysis Spliced {
        inputs { sig: events[2], bkg: events[2] }
        knobs { bandwidth = 0.1 }
        params {
            nn = mlp(2 => 4 => 1, relu, sigmoid);
            edges = bin_edges(0.0..1.0, bins = 2);
        }
        let s = hist(nn(sig), edges, bandwidth, scale = 20.0);
        let b = hist(nn(bkg), edges, bandwidth, scale = 100.0);
        model from "analyses/no_such_workspace.json" {
            channel nn_region {
                sample signal = s { normfactor mu }
                sample background = b { normfactor background_norm }
            }
        }
        loss cls;
        metrics cls;
    }
}

fn main() {}
