// Two softmax networks with different numbers of outputs filling one channel.
neos::neos! {
    pub analysis Soft {
        inputs { sig: events[2], bkg: events[2] }
        params {
            nn_sig = mlp(2 => 8 => 3, relu, softmax);
            nn_bkg = mlp(2 => 8 => 4, relu, softmax);
        }
        let s = counts(nn_sig(sig), scale = 20.0);
        let b = counts(nn_bkg(bkg), scale = 100.0);
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
