//! The dense layers and residual blocks of TiDE, forward and backward, on row-major `f32`
//! buffers. Every product goes to `gemm` on the calling thread: a training step runs one
//! shard per worker, so nothing here spreads work further.

use super::super::dropout::Dropout;
use super::layout::{Block, Dense};

/// A matrix view: element (i, j) is `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// `data` as a row-major `rows × cols` matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        let extent = rows.checked_mul(cols).expect("matrix size overflows");
        assert!(data.len() >= extent, "matrix view past its buffer");
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// `c = a·b`, or `c += a·b` with `accumulate`; `c` is row-major `a.rows × b.cols`.
pub fn matmul(c: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions differ");
    let extent = m.checked_mul(n).expect("product size overflows");
    assert!(c.len() >= extent, "product past its buffer");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the asserts above (and `Mat::new`'s) keep every index gemm forms, up to
    // (m−1)·rs + (k−1)·cs etc., inside the three slices; `c` is borrowed mutably, so it
    // cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `y (+)= x·W + b` for `rows` rows of `x`.
pub fn linear(params: &[f32], dense: Dense, x: &[f32], rows: usize, y: &mut [f32], add: bool) {
    let (input, output) = (dense.input, dense.output);
    let bias = &params[dense.bias()..dense.end()];
    for row in y[..rows * output].chunks_exact_mut(output) {
        if add {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        } else {
            row.copy_from_slice(bias);
        }
    }
    let weight = Mat::new(&params[dense.weight..dense.bias()], input, output);
    matmul(y, Mat::new(x, rows, input), weight, true);
}

/// The gradients of a dense layer's weight and bias for output gradient `dy`, written
/// into `grads` (each layer is used once per step, so nothing is there to add to).
pub fn linear_grads(grads: &mut [f32], dense: Dense, x: &[f32], dy: &[f32], rows: usize) {
    let (input, output) = (dense.input, dense.output);
    let (weight, bias) = grads[dense.weight..dense.end()].split_at_mut(input * output);
    matmul(
        weight,
        Mat::new(x, rows, input).t(),
        Mat::new(dy, rows, output),
        false,
    );
    bias.fill(0.0);
    for row in dy[..rows * output].chunks_exact(output) {
        bias.iter_mut().zip(row).for_each(|(b, d)| *b += d);
    }
}

/// What a block's backward pass needs from its forward pass.
pub struct Tape {
    input: Vec<f32>,
    hidden: Vec<f32>,
    mask: Option<Vec<f32>>,
    rows: usize,
}

/// `y = mask ⊙ (ReLU(x·W₁ + b₁)·W₂ + b₂) + x·Wₛ + bₛ`, as `ResidualBlock::forward` without
/// layer norm; the mask is the dropout's next one.
pub fn block_forward(
    params: &[f32],
    block: &Block,
    input: Vec<f32>,
    rows: usize,
    dropout: &mut Dropout,
) -> (Tape, Vec<f32>) {
    let mut hidden = vec![0.0; rows * block.dense.output];
    linear(params, block.dense, &input, rows, &mut hidden, false);
    // burn-flex's ReLU keeps a NaN (so a diverged run shows in the loss); `max` would not.
    hidden
        .iter_mut()
        .for_each(|v| *v = if v.is_nan() || *v > 0.0 { *v } else { 0.0 });
    let mut y = vec![0.0; rows * block.out.output];
    linear(params, block.out, &hidden, rows, &mut y, false);
    let mask = dropout.next_mask(rows, block.out.output);
    if let Some(mask) = &mask {
        y.iter_mut().zip(mask).for_each(|(v, m)| *v *= m);
    }
    linear(params, block.skip, &input, rows, &mut y, true);
    let tape = Tape {
        input,
        hidden,
        mask,
        rows,
    };
    (tape, y)
}

/// Writes the block's parameter gradients into `grads` for output gradient `dy`, and
/// returns the input's gradient when `input_grad` asks for it.
pub fn block_backward(
    params: &[f32],
    grads: &mut [f32],
    block: &Block,
    tape: Tape,
    dy: &[f32],
    input_grad: bool,
) -> Option<Vec<f32>> {
    let Tape {
        input,
        hidden,
        mask,
        rows,
    } = tape;
    linear_grads(grads, block.skip, &input, dy, rows);
    let d_out = match &mask {
        Some(mask) => dy.iter().zip(mask).map(|(d, m)| d * m).collect(),
        None => dy.to_vec(),
    };
    linear_grads(grads, block.out, &hidden, &d_out, rows);
    let (width, out) = (block.dense.output, block.out);
    let mut d_hidden = vec![0.0; rows * width];
    let w_out = Mat::new(&params[out.weight..out.bias()], out.input, out.output);
    matmul(
        &mut d_hidden,
        Mat::new(&d_out, rows, out.output),
        w_out.t(),
        false,
    );
    // ReLU passes the gradient where its output is positive or NaN (burn-flex's rule).
    d_hidden
        .iter_mut()
        .zip(&hidden)
        .for_each(|(d, h)| *d = if h.is_nan() || *h > 0.0 { *d } else { 0.0 });
    linear_grads(grads, block.dense, &input, &d_hidden, rows);
    input_grad.then(|| {
        let (dense, skip) = (block.dense, block.skip);
        let mut dx = vec![0.0; rows * dense.input];
        let w_dense = Mat::new(
            &params[dense.weight..dense.bias()],
            dense.input,
            dense.output,
        );
        let w_skip = Mat::new(&params[skip.weight..skip.bias()], skip.input, skip.output);
        matmul(
            &mut dx,
            Mat::new(&d_hidden, rows, width),
            w_dense.t(),
            false,
        );
        matmul(&mut dx, Mat::new(dy, rows, skip.output), w_skip.t(), true);
        dx
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [[1, 2, 3], [4, 5, 6]] · [[1, 0], [0, 1], [1, 1]] = [[4, 5], [10, 11]], and the
    /// transposed views give the products of the transposes.
    #[test]
    fn products_by_hand() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let mut c = [9.0; 4];
        matmul(&mut c, Mat::new(&a, 2, 3), Mat::new(&b, 3, 2), false);
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        matmul(&mut c, Mat::new(&a, 2, 3), Mat::new(&b, 3, 2), true);
        assert_eq!(c, [8.0, 10.0, 20.0, 22.0]);
        // aᵀ·a (3 × 3): column dot products.
        let mut g = [0.0; 9];
        matmul(&mut g, Mat::new(&a, 2, 3).t(), Mat::new(&a, 2, 3), false);
        assert_eq!(g, [17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]);
        // a·aᵀ (2 × 2): row dot products.
        let mut r = [0.0; 4];
        matmul(&mut r, Mat::new(&a, 2, 3), Mat::new(&a, 2, 3).t(), false);
        assert_eq!(r, [14.0, 32.0, 32.0, 77.0]);
    }

    /// One sample, input 2, hidden 2, output 1, no dropout, by hand:
    /// x = (1, −2); W₁ = [[1, 1], [1, −1]], b₁ = (0, 0) → pre = (−1, 3), h = (0, 3);
    /// W₂ = (2, 0.5), b₂ = 0.25 → 1.75; Wₛ = (1, 1), bₛ = 0 → −1; y = 0.75.
    /// With dy = 1: dW₂ = h = (0, 3), db₂ = 1; dh = W₂ ⊙ (h > 0) = (0, 0.5);
    /// dW₁ = xᵀ·dh = [[0, 0.5], [0, −1]]; dWₛ = x; dx = W₁·dh + Wₛ = (1.5, 0.5).
    #[test]
    fn a_block_forward_and_backward_by_hand() {
        let block = Block {
            dense: Dense::at(0, 2, 2),
            out: Dense::at(6, 2, 1),
            skip: Dense::at(9, 2, 1),
        };
        #[rustfmt::skip]
        let params = [
            1.0, 1.0, 1.0, -1.0, 0.0, 0.0, // W₁, b₁
            2.0, 0.5, 0.25,                // W₂, b₂
            1.0, 1.0, 0.0,                 // Wₛ, bₛ
        ];
        let mut dropout = Dropout::new(0.0, 1, 0, 0, 1);
        let (tape, y) = block_forward(&params, &block, vec![1.0, -2.0], 1, &mut dropout);
        assert_eq!(y, [0.75]);
        let mut grads = [f32::NAN; 12];
        let dx = block_backward(&params, &mut grads, &block, tape, &[1.0], true).unwrap();
        #[rustfmt::skip]
        assert_eq!(grads, [
            0.0, 0.5, 0.0, -1.0, 0.0, 0.5,
            0.0, 3.0, 1.0,
            1.0, -2.0, 1.0,
        ]);
        assert_eq!(dx, [1.5, 0.5]);
    }
}
