//! A scrambled Sobol sequence: quasi-random points of the unit cube that cover it far more
//! evenly than independent draws (the GP's start-up trials, and the candidates its acquisition
//! is first evaluated at). Joe and Kuo's direction numbers (new-joe-kuo-6.21201, as SciPy ships
//! them) for the first 32 dimensions; each dimension's digits are scrambled by a random
//! lower-triangular binary matrix and a random digital shift (Matoušek's linear scrambling, as
//! `scipy.stats.qmc.Sobol(scramble=True)`), so that a seed gives another, equally even,
//! sequence.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Binary digits per coordinate.
const BITS: u32 = 52;

/// Per dimension from the second: its primitive polynomial (leading and trailing 1 included)
/// and its initial direction numbers m_1..m_s.
const DIRECTIONS: [(u32, &[u64]); 31] = [
    (3, &[1]),
    (7, &[1, 3]),
    (11, &[1, 3, 1]),
    (13, &[1, 1, 1]),
    (19, &[1, 1, 3, 3]),
    (25, &[1, 3, 5, 13]),
    (37, &[1, 1, 5, 5, 17]),
    (41, &[1, 1, 5, 5, 5]),
    (47, &[1, 1, 7, 11, 19]),
    (55, &[1, 1, 5, 1, 1]),
    (59, &[1, 1, 1, 3, 11]),
    (61, &[1, 3, 5, 5, 31]),
    (67, &[1, 3, 3, 9, 7, 49]),
    (91, &[1, 1, 1, 15, 21, 21]),
    (97, &[1, 3, 1, 13, 27, 49]),
    (103, &[1, 1, 1, 15, 7, 5]),
    (109, &[1, 3, 1, 15, 13, 25]),
    (115, &[1, 1, 5, 5, 19, 61]),
    (131, &[1, 3, 7, 11, 23, 15, 103]),
    (137, &[1, 3, 7, 13, 13, 15, 69]),
    (143, &[1, 1, 3, 13, 7, 35, 63]),
    (145, &[1, 3, 5, 9, 1, 25, 53]),
    (157, &[1, 3, 1, 13, 9, 35, 107]),
    (167, &[1, 3, 1, 5, 27, 61, 31]),
    (171, &[1, 1, 5, 11, 19, 41, 61]),
    (185, &[1, 3, 5, 3, 3, 13, 69]),
    (191, &[1, 1, 7, 13, 1, 19, 1]),
    (193, &[1, 3, 7, 5, 13, 19, 59]),
    (203, &[1, 1, 3, 9, 25, 29, 41]),
    (211, &[1, 3, 5, 13, 23, 1, 55]),
    (213, &[1, 3, 7, 3, 13, 59, 17]),
];

/// The dimensions the table covers; a space with more reuses them with other scrambles.
pub const MAX_DIMS: usize = DIRECTIONS.len() + 1;

/// A (scrambled) Sobol sequence.
pub struct Sobol {
    /// Per dimension: its direction numbers V_1..V_BITS, scrambled.
    directions: Vec<Vec<u64>>,
    /// Per dimension: the digital shift.
    shifts: Vec<u64>,
}

impl Sobol {
    /// The sequence in `dims` dimensions, scrambled by `seed` (None: the plain sequence).
    pub fn new(dims: usize, seed: Option<u64>) -> Self {
        let mut rng = seed.map(ChaCha8Rng::seed_from_u64);
        let mut directions = Vec::with_capacity(dims);
        let mut shifts = Vec::with_capacity(dims);
        for d in 0..dims {
            let mut v = plain_directions(d % MAX_DIMS);
            if let Some(rng) = rng.as_mut() {
                // Digit r of every direction number becomes the sum of digits c <= r of it,
                // weighted by a random lower-triangular matrix with ones on its diagonal.
                let rows: Vec<u64> = (0..BITS)
                    .map(|r| {
                        let below: u64 = rng.random::<u64>() & mask_above(r);
                        below | digit(r)
                    })
                    .collect();
                for x in &mut v {
                    *x = rows
                        .iter()
                        .enumerate()
                        .filter(|(_, row)| (**row & *x).count_ones() % 2 == 1)
                        .fold(0, |acc, (r, _)| acc | digit(r as u32));
                }
                shifts.push(rng.random::<u64>() & ((1u64 << BITS) - 1));
            } else {
                shifts.push(0);
            }
            directions.push(v);
        }
        Self { directions, shifts }
    }

    /// Point `index` (in Gray-code order, as SciPy's): a coordinate in [0, 1) per dimension.
    pub fn point(&self, index: u64) -> Vec<f64> {
        let gray = index ^ (index >> 1);
        self.directions
            .iter()
            .zip(&self.shifts)
            .map(|(v, shift)| {
                let x = (0..BITS as usize)
                    .filter(|&k| gray >> k & 1 == 1)
                    .fold(*shift, |acc, k| acc ^ v[k]);
                x as f64 / (1u64 << BITS) as f64
            })
            .collect()
    }
}

/// The bit of digit `r` (0: the most significant, worth 1/2).
fn digit(r: u32) -> u64 {
    1u64 << (BITS - 1 - r)
}

/// The bits of the digits before `r` (more significant).
fn mask_above(r: u32) -> u64 {
    ((1u64 << BITS) - 1) & !((1u64 << (BITS - r)) - 1)
}

/// Dimension `d`'s unscrambled direction numbers V_1..V_BITS, as BITS-digit fractions.
fn plain_directions(d: usize) -> Vec<u64> {
    if d == 0 {
        return (0..BITS).map(digit).collect();
    }
    let (poly, init) = DIRECTIONS[d - 1];
    let s = init.len();
    let mut m: Vec<u64> = init.to_vec();
    for k in s..BITS as usize {
        // m_k = 2 a_1 m_{k-1} ^ 4 a_2 m_{k-2} ^ ... ^ 2^s m_{k-s} ^ m_{k-s}
        let mut next = m[k - s] ^ (m[k - s] << s);
        for i in 1..s {
            let a = (poly >> (s - i)) & 1;
            if a == 1 {
                next ^= m[k - i] << i;
            }
        }
        m.push(next);
    }
    m.iter()
        .enumerate()
        .map(|(k, mk)| mk << (BITS as usize - 1 - k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_sequence_is_scipys() {
        // scipy.stats.qmc.Sobol(3, scramble=False).random(8)
        let want = [
            [0.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.75, 0.25, 0.25],
            [0.25, 0.75, 0.75],
            [0.375, 0.375, 0.625],
            [0.875, 0.875, 0.125],
            [0.625, 0.125, 0.875],
            [0.125, 0.625, 0.375],
        ];
        let s = Sobol::new(3, None);
        for (i, w) in want.iter().enumerate() {
            assert_eq!(s.point(i as u64), w.to_vec(), "point {i}");
        }
    }

    #[test]
    fn scrambled_points_stay_a_net_and_a_seed_gives_another_sequence() {
        let s = Sobol::new(6, Some(7));
        // The first 64 points put exactly 8 in each eighth of every coordinate (a (t, m, s)-
        // net keeps that under linear scrambling and a digital shift).
        let points: Vec<Vec<f64>> = (0..64).map(|i| s.point(i)).collect();
        assert!(points.iter().flatten().all(|x| (0.0..1.0).contains(x)));
        for k in 0..6 {
            let mut bins = [0usize; 8];
            for p in &points {
                bins[(p[k] * 8.0) as usize] += 1;
            }
            assert_eq!(bins, [8; 8], "dimension {k}");
        }
        assert_eq!(s.point(5), Sobol::new(6, Some(7)).point(5), "deterministic");
        assert_ne!(s.point(5), Sobol::new(6, Some(8)).point(5));
    }
}
