//! The lowering of the networks: an `mlp` applied to events (its layers and activations, a
//! softmax shifted by each event's largest output) and each network's graph of its own, for
//! `network()`. Split out of `lower.rs` because the networks are a concept of their own.

use super::*;

impl<'a, 'b> Lowering<'a, 'b> {
    /// One graph per network, taking the same flat parameters as the analysis.
    pub(super) fn network_graphs(&self, leaves: &[ParamLeaf]) -> Result<Vec<Network>> {
        let mut out = Vec::new();
        for (name, mlp, _) in &self.networks {
            let nb = Builder::new();
            for leaf in leaves {
                nb.param(&leaf.name, DType::F64, Shape::fixed(&leaf.shape));
            }
            let layers: Vec<Tensor<'_>> = mlp
                .sizes
                .windows(2)
                .enumerate()
                .flat_map(|(k, _)| [format!("{name}_w{k}"), format!("{name}_b{k}")])
                .map(|leaf| nb.leaf(&leaf).unwrap_or_else(|| nb.scalar(0.0, DType::F64)))
                .collect();
            let x = nb.input("x", DType::F64, Shape::new([EVENTS, Dim::Fixed(mlp.sizes[0])]));
            nb.output("y", apply_mlp(mlp, &layers, x));
            let outputs = mlp.sizes.last().copied().unwrap_or(1);
            out.push(Network { name: name.to_string(), inputs: mlp.sizes[0], outputs, graph: nb.finish()? });
        }
        Ok(out)
    }
}

/// The network on `x` [n, inputs]: dense layers with the hidden activation between them and
/// the output activation last; a single output is squeezed to [n].
///
/// In a network of precision f32 the inputs and the weights are cast to f32 on the way in and
/// the outputs back to f64 on the way out: the products, activations and their derivatives run
/// in f32 while the parameters (and Adam's moments) stay f64, and the histograms after the
/// network accumulate in f64.
pub(super) fn apply_mlp<'b>(mlp: &Mlp, layers: &[Tensor<'b>], x: Tensor<'b>) -> Tensor<'b> {
    let p = mlp.precision;
    let mut h = x.cast(p);
    let depth = layers.len() / 2;
    for k in 0..depth {
        h = h.matmul(layers[2 * k].cast(p)) + layers[2 * k + 1].cast(p);
        h = activate(if k + 1 == depth { mlp.output } else { mlp.hidden }, h);
    }
    h = h.cast(DType::F64);
    if mlp.sizes.last() == Some(&1) {
        let n = h.shape().0[0];
        h = h.reshape(Shape::new([n]));
    }
    h
}

pub(super) fn activate<'b>(a: Activation, x: Tensor<'b>) -> Tensor<'b> {
    match a {
        Activation::Relu => x.relu(),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => x.sigmoid(),
        Activation::Softplus => x.softplus(),
        Activation::Identity => x,
        Activation::Softmax => {
            // Shifted by each event's largest output, so that exp cannot overflow; the shift
            // cancels in the ratio (and in its derivative).
            let shape = x.shape();
            let n = shape.0[0];
            let column = |t: Tensor<'b>| t.reshape(Shape::new([n, Dim::Fixed(1)])).broadcast_to(shape.clone());
            let e = (x - column(x.max(&[1]))).exp();
            e / column(e.sum(&[1]))
        }
    }
}
