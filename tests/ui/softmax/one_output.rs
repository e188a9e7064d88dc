// Softmax over a single output: every event's one output would be 1.
neos::neos! {
    pub analysis Soft {
        inputs { sig: events[2], bkg: events[2] }
        params { nn = mlp(2 => 8 => 1, relu, softmax); }
        let s = counts(nn(sig), scale = 20.0);
        let b = counts(nn(bkg), scale = 100.0);
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
