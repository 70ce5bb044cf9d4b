//! torchvision's `RandomRotation` and `RandomAffine` for 28x28 grey images, as PIL runs them.
//!
//! Each transform is an inverse affine map from output to input pixel coordinates, sampled
//! nearest-neighbour with fill 0, like PIL's `Image.transform(AFFINE, NEAREST)`: the output
//! pixel centre `(x + 0.5, y + 0.5)` is mapped in double precision and the input coordinate is
//! truncated (negative ones fall outside). Rotation and affine stay two
//! separate warps (two roundings), as in the study's `Compose([RandomRotation, RandomAffine])`.

use rand::Rng;

use crate::train::config::EffectiveAugment;

/// Image side length.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
const CENTER: f64 = SIDE as f64 * 0.5;

/// An inverse affine map: input = (a·x + b·y + c, d·x + e·y + f) for output pixel (x, y).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warp {
    m: [f64; 6],
}

impl Warp {
    /// The identity.
    pub fn identity() -> Self {
        Self {
            m: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        }
    }

    /// `F.rotate(img, angle)` on a PIL image: counter-clockwise by `angle` degrees about the centre.
    pub fn rotation(angle: f64) -> Self {
        // PIL's Image.rotate, including its rounding of the matrix to 15 decimals.
        let r = -angle.to_radians();
        let round15 = |v: f64| (v * 1e15).round() / 1e15;
        let (a, b, d, e) = (
            round15(r.cos()),
            round15(r.sin()),
            round15(-r.sin()),
            round15(r.cos()),
        );
        let c = a * -CENTER + b * -CENTER + CENTER;
        let f = d * -CENTER + e * -CENTER + CENTER;
        Self {
            m: [a, b, c, d, e, f],
        }
    }

    /// `F.affine(img, angle, translate, scale, shear=0)` on a PIL image: clockwise by `angle`
    /// degrees, scaled by `scale`, then shifted by whole pixels `translate`, about the centre.
    pub fn affine(angle: f64, translate: (f64, f64), scale: f64) -> Self {
        // torchvision's _get_inverse_affine_matrix with shear 0.
        let rot = angle.to_radians();
        let (a, b, c, d) = (rot.cos(), -rot.sin(), rot.sin(), rot.cos());
        let mut m = [d, -b, 0.0, -c, a, 0.0].map(|v| v / scale);
        let (tx, ty) = translate;
        m[2] += m[0] * (-CENTER - tx) + m[1] * (-CENTER - ty);
        m[5] += m[3] * (-CENTER - tx) + m[4] * (-CENTER - ty);
        m[2] += CENTER;
        m[5] += CENTER;
        Self { m }
    }

    /// Resamples `src` into `dst` (both 28x28), nearest neighbour, fill 0.
    pub fn apply(&self, src: &[u8], dst: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.apply_avx2(src, dst) };
        }
        self.resample(src, dst);
    }

    /// [`Warp::apply`] compiled for AVX2, which vectorises the coordinate arithmetic.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_avx2(&self, src: &[u8], dst: &mut [u8]) {
        self.resample(src, dst);
    }

    #[inline(always)]
    fn resample(&self, src: &[u8], dst: &mut [u8]) {
        let src: &[u8; PIXELS] = src.try_into().expect("source must be one 28x28 image");
        let dst: &mut [u8; PIXELS] = dst.try_into().expect("destination must be one 28x28 image");
        let [a, b, c, d, e, f] = self.m;
        // Input coordinates of output pixel centres (x + 0.5, y + 0.5), each computed directly
        // (PIL steps them incrementally; the two differ only within ~1e-13 of a pixel edge), so
        // that a whole row is computed in vector registers.
        let x0 = c + b * 0.5 + a * 0.5;
        let y0 = f + e * 0.5 + d * 0.5;
        let (mut xs, mut ys) = ([0i32; SIDE], [0i32; SIDE]);
        for (y, row) in dst.chunks_exact_mut(SIDE).enumerate() {
            let (xo, yo) = (x0 + b * y as f64, y0 + e * y as f64);
            for (x, (xi, yi)) in xs.iter_mut().zip(ys.iter_mut()).enumerate() {
                *xi = pixel_index(xo + a * x as f64);
                *yi = pixel_index(yo + d * x as f64);
            }
            for ((out, &xi), &yi) in row.iter_mut().zip(&xs).zip(&ys) {
                let inside = (xi as u32) < SIDE as u32 && (yi as u32) < SIDE as u32;
                // Branch-free: read a valid pixel either way, keep it only when inside.
                let index = if inside {
                    (yi * SIDE as i32 + xi) as usize
                } else {
                    0
                };
                *out = if inside { src[index] } else { 0 };
            }
        }
    }
}

/// The pixel a coordinate falls in: floor, computed as a truncation of a shifted positive
/// value (fast without SSE4.1; exact except within ~1e-13 of a pixel edge). Coordinates far
/// outside the image map to negative or large indices, which the caller treats as outside.
#[inline(always)]
fn pixel_index(v: f64) -> i32 {
    const SHIFT: f64 = 1024.0;
    (v.clamp(-SHIFT, SHIFT) + SHIFT) as i32 - SHIFT as i32
}

/// Per-image random transforms with torchvision's parameter sampling.
#[derive(Debug, Clone)]
pub struct Augmenter {
    spec: EffectiveAugment,
}

/// The parameters drawn for one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    /// RandomRotation angle in degrees (None when rotation is off).
    pub rotation: Option<f64>,
    /// RandomAffine (angle, (tx, ty) whole pixels, scale) (None when affine is off).
    pub affine: Option<(f64, (f64, f64), f64)>,
}

impl Augmenter {
    /// An augmenter for the given (strength-scaled) magnitudes.
    pub fn new(spec: EffectiveAugment) -> Self {
        Self { spec }
    }

    /// Draws one image's parameters: rotation angle U(-d, d); affine angle U(-d, d),
    /// translation round(U(-t·28, t·28)) pixels per axis, scale U(lo, hi).
    pub fn draw(&self, rng: &mut impl Rng) -> Draw {
        let rotation = (self.spec.rotation > 0.0).then(|| symmetric(rng, self.spec.rotation));
        let affine = self.spec.affine.as_ref().map(|a| {
            let angle = symmetric(rng, a.degrees);
            let max_dx = a.translate[0] * SIDE as f64;
            let max_dy = a.translate[1] * SIDE as f64;
            let tx = symmetric(rng, max_dx).round_ties_even();
            let ty = symmetric(rng, max_dy).round_ties_even();
            let scale = if a.scale[0] < a.scale[1] {
                rng.random_range(a.scale[0]..a.scale[1])
            } else {
                a.scale[0]
            };
            (angle, (tx, ty), scale)
        });
        Draw { rotation, affine }
    }

    /// Augments one image: draws parameters from `rng` and warps `src` into `dst`.
    pub fn augment(&self, rng: &mut impl Rng, src: &[u8], dst: &mut [u8]) {
        let draw = self.draw(rng);
        let mut tmp = [0u8; PIXELS];
        let src = match draw.rotation {
            Some(angle) => {
                Warp::rotation(angle).apply(src, &mut tmp);
                &tmp[..]
            }
            None => src,
        };
        match draw.affine {
            Some((angle, t, s)) => Warp::affine(angle, t, s).apply(src, dst),
            None => dst.copy_from_slice(src),
        }
    }
}

/// U(-d, d) (0 when d is 0).
fn symmetric(rng: &mut impl Rng, d: f64) -> f64 {
    if d > 0.0 {
        rng.random_range(-d..d)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::AffineConfig;
    use rand::SeedableRng;

    /// An image whose pixel value encodes its position (1..=255, never 0).
    fn ramp() -> Vec<u8> {
        (0..PIXELS).map(|i| (i % 255 + 1) as u8).collect()
    }

    fn warp(w: Warp, src: &[u8]) -> Vec<u8> {
        let mut dst = vec![0u8; PIXELS];
        w.apply(src, &mut dst);
        dst
    }

    #[test]
    fn identity_parameters_leave_the_image_unchanged() {
        let img = ramp();
        assert_eq!(warp(Warp::identity(), &img), img);
        assert_eq!(warp(Warp::rotation(0.0), &img), img);
        assert_eq!(warp(Warp::affine(0.0, (0.0, 0.0), 1.0), &img), img);
    }

    #[test]
    fn rotation_by_90_degrees_is_counter_clockwise_and_exact() {
        let img = ramp();
        let out = warp(Warp::rotation(90.0), &img);
        for y in 0..SIDE {
            for x in 0..SIDE {
                // Counter-clockwise: output (row y, col x) comes from input (row x, col 27 - y).
                assert_eq!(
                    out[y * SIDE + x],
                    img[x * SIDE + (SIDE - 1 - y)],
                    "at ({y},{x})"
                );
            }
        }
        // The top-right corner pixel lands in the top-left corner.
        assert_eq!(out[0], img[SIDE - 1]);
    }

    #[test]
    fn affine_angle_turns_clockwise() {
        let img = ramp();
        let out = warp(Warp::affine(90.0, (0.0, 0.0), 1.0), &img);
        // Clockwise: the top-left corner pixel lands in the top-right corner.
        assert_eq!(out[SIDE - 1], img[0]);
    }

    #[test]
    fn integer_translation_shifts_exactly_and_fills_with_zero() {
        let img = ramp();
        let out = warp(Warp::affine(0.0, (3.0, -2.0), 1.0), &img);
        for y in 0..SIDE as i64 {
            for x in 0..SIDE as i64 {
                let (sx, sy) = (x - 3, y + 2);
                let expected = if (0..SIDE as i64).contains(&sx) && (0..SIDE as i64).contains(&sy) {
                    img[(sy * SIDE as i64 + sx) as usize]
                } else {
                    0
                };
                assert_eq!(
                    out[(y * SIDE as i64 + x) as usize],
                    expected,
                    "at ({y},{x})"
                );
            }
        }
        // Columns 0..3 came from outside the image.
        assert!((0..SIDE).all(|y| out[y * SIDE] == 0 && out[y * SIDE + 2] == 0));
    }

    #[test]
    fn shrinking_fills_the_border_with_zero() {
        let img = vec![200u8; PIXELS];
        let out = warp(Warp::affine(0.0, (0.0, 0.0), 0.5), &img);
        assert_eq!(out[0], 0, "corner is outside the shrunken image");
        assert_eq!(out[14 * SIDE + 14], 200, "centre keeps its value");
        assert_eq!(out.iter().filter(|&&p| p == 200).count(), 14 * 14);
    }

    #[test]
    fn parameters_follow_torchvision_ranges() {
        let aug = Augmenter::new(EffectiveAugment {
            rotation: 10.0,
            affine: Some(AffineConfig {
                degrees: 20.0,
                translate: [0.1, 0.1],
                scale: [0.9, 1.1],
            }),
        });
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..2000 {
            let d = aug.draw(&mut rng);
            let r = d.rotation.unwrap();
            let (angle, (tx, ty), s) = d.affine.unwrap();
            assert!((-10.0..10.0).contains(&r));
            assert!((-20.0..20.0).contains(&angle));
            // round(U(-2.8, 2.8)) is a whole number in [-3, 3]
            assert!(tx.fract() == 0.0 && (-3.0..=3.0).contains(&tx));
            assert!(ty.fract() == 0.0 && (-3.0..=3.0).contains(&ty));
            assert!((0.9..1.1).contains(&s));
        }
    }

    #[test]
    fn same_rng_state_gives_same_augmentation() {
        let aug = Augmenter::new(EffectiveAugment {
            rotation: 10.0,
            affine: None,
        });
        let img = ramp();
        let run = || {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
            let mut out = vec![0u8; PIXELS];
            aug.augment(&mut rng, &img, &mut out);
            out
        };
        assert_eq!(run(), run());
        assert_ne!(run(), img);
    }
}
