//! Several objectives at once: dominance, non-dominated sorting, hypervolume and the knee of
//! a front. Everything here works on *losses*: each objective's value oriented so that smaller
//! is better (a maximised metric negated), with a constraint violation per point (0 when
//! feasible), as in Deb's constrained domination that Optuna's NSGA-II and constrained TPE use.

/// One candidate: its losses (smaller is better in every coordinate) and how much it violates
/// the constraints (0: feasible).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// One loss per objective.
    pub losses: Vec<f64>,
    /// Sum of the amounts by which its constraints are exceeded; 0 when it meets them all.
    pub violation: f64,
}

impl Point {
    /// Whether it meets every constraint.
    pub fn feasible(&self) -> bool {
        self.violation <= 0.0
    }
}

/// Whether `a` dominates `b` under constraints: a feasible point dominates an infeasible one;
/// of two infeasible points the one that violates less dominates; of two feasible points, `a`
/// dominates when it is no worse in every loss and better in one.
pub fn dominates(a: &Point, b: &Point) -> bool {
    match (a.feasible(), b.feasible()) {
        (true, false) => true,
        (false, true) => false,
        (false, false) => a.violation < b.violation,
        (true, true) => {
            let mut better = false;
            for (x, y) in a.losses.iter().zip(&b.losses) {
                if x > y {
                    return false;
                }
                better |= x < y;
            }
            better
        }
    }
}

/// The non-dominated rank of every point (1: on the front; 2: on the front once rank 1 is
/// removed; ...). Equal points share a rank.
pub fn ranks(points: &[Point]) -> Vec<usize> {
    let n = points.len();
    let mut dominated_by = vec![0usize; n];
    let mut dominating: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..n {
            if i != j && dominates(&points[i], &points[j]) {
                dominating[i].push(j);
                dominated_by[j] += 1;
            }
        }
    }
    let mut rank = vec![0usize; n];
    let mut front: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    let mut r = 1;
    while !front.is_empty() {
        let mut next = Vec::new();
        for &i in &front {
            rank[i] = r;
            for &j in &dominating[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        front = next;
        r += 1;
    }
    rank
}

/// The hypervolume the `losses` dominate up to `reference` (a point worse than them in every
/// coordinate; coordinates at or beyond it add nothing). Exact, by slicing along the last
/// coordinate: fine for the few hundred points and two or three objectives of a sweep.
pub fn hypervolume(losses: &[Vec<f64>], reference: &[f64]) -> f64 {
    let inside: Vec<Vec<f64>> = losses
        .iter()
        .filter(|p| p.iter().zip(reference).all(|(x, r)| x < r))
        .cloned()
        .collect();
    slice_volume(inside, reference)
}

fn slice_volume(mut points: Vec<Vec<f64>>, reference: &[f64]) -> f64 {
    let d = reference.len();
    if points.is_empty() {
        return 0.0;
    }
    if d == 1 {
        let best = points.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
        return reference[0] - best;
    }
    if d == 2 {
        points.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
        let mut volume = 0.0;
        let mut floor = reference[1];
        for p in &points {
            if p[1] < floor {
                volume += (reference[0] - p[0]) * (floor - p[1]);
                floor = p[1];
            }
        }
        return volume;
    }
    // Slabs between successive values of the last coordinate: each is the (d-1)-volume of the
    // points at or below its bottom, times its height.
    points.sort_by(|a, b| a[d - 1].total_cmp(&b[d - 1]));
    let mut volume = 0.0;
    for i in 0..points.len() {
        let top = points.get(i + 1).map_or(reference[d - 1], |p| p[d - 1]);
        let height = top - points[i][d - 1];
        if height <= 0.0 {
            continue;
        }
        let below: Vec<Vec<f64>> = points[..=i].iter().map(|p| p[..d - 1].to_vec()).collect();
        volume += slice_volume(below, &reference[..d - 1]) * height;
    }
    volume
}

/// How much hypervolume each point adds to the set: the volume lost without it.
pub fn contributions(losses: &[Vec<f64>], reference: &[f64]) -> Vec<f64> {
    let all = hypervolume(losses, reference);
    (0..losses.len())
        .map(|i| {
            let others: Vec<Vec<f64>> = losses
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| p.clone())
                .collect();
            all - hypervolume(&others, reference)
        })
        .collect()
}

/// A reference point for `losses`: the worst of each coordinate, pushed a tenth of its range
/// (at least 1e-9 of its size) further, so that the worst points still add volume.
pub fn nadir_reference(losses: &[Vec<f64>]) -> Vec<f64> {
    let d = losses.first().map_or(0, Vec::len);
    (0..d)
        .map(|k| {
            let lo = losses.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min);
            let hi = losses
                .iter()
                .map(|p| p[k])
                .fold(f64::NEG_INFINITY, f64::max);
            hi + ((hi - lo) * 0.1).max(hi.abs() * 1e-9).max(1e-12)
        })
        .collect()
}

/// The knee of a front: the point nearest the ideal point (every coordinate at its best over
/// the front) once each coordinate is scaled to 0-1 over the front. Ties go to the earlier
/// point. None for an empty front.
pub fn knee(front: &[Vec<f64>]) -> Option<usize> {
    let d = front.first()?.len();
    let range: Vec<(f64, f64)> = (0..d)
        .map(|k| {
            let lo = front.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min);
            let hi = front.iter().map(|p| p[k]).fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        })
        .collect();
    let distance = |p: &Vec<f64>| -> f64 {
        p.iter()
            .zip(&range)
            .map(|(x, (lo, hi))| {
                if hi > lo {
                    ((x - lo) / (hi - lo)).powi(2)
                } else {
                    0.0
                }
            })
            .sum()
    };
    (0..front.len()).min_by(|&a, &b| {
        distance(&front[a])
            .total_cmp(&distance(&front[b]))
            .then(a.cmp(&b))
    })
}

/// An order of `points`, best first, for choosing a good share of them: feasible points by
/// non-dominated rank and, within a rank, by hypervolume contribution (the larger first, as
/// Optuna's multi-objective TPE splits its good group); then infeasible points by violation.
pub fn order(points: &[Point]) -> Vec<usize> {
    let rank = ranks(points);
    let mut contribution = vec![0.0; points.len()];
    let max_rank = rank.iter().copied().max().unwrap_or(0);
    let feasible: Vec<Vec<f64>> = points
        .iter()
        .filter(|p| p.feasible())
        .map(|p| p.losses.clone())
        .collect();
    if !feasible.is_empty() {
        let reference = nadir_reference(&feasible);
        for r in 1..=max_rank {
            let members: Vec<usize> = (0..points.len())
                .filter(|&i| rank[i] == r && points[i].feasible())
                .collect();
            let losses: Vec<Vec<f64>> = members.iter().map(|&i| points[i].losses.clone()).collect();
            for (&i, c) in members.iter().zip(contributions(&losses, &reference)) {
                contribution[i] = c;
            }
        }
    }
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by(|&a, &b| {
        let (pa, pb) = (&points[a], &points[b]);
        pb.feasible()
            .cmp(&pa.feasible())
            .then(pa.violation.total_cmp(&pb.violation))
            .then(rank[a].cmp(&rank[b]))
            .then(contribution[b].total_cmp(&contribution[a]))
            .then(a.cmp(&b))
    });
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(losses: &[f64]) -> Point {
        Point {
            losses: losses.to_vec(),
            violation: 0.0,
        }
    }

    fn infeasible(losses: &[f64], violation: f64) -> Point {
        Point {
            losses: losses.to_vec(),
            violation,
        }
    }

    #[test]
    fn non_dominated_sorting_by_hand_with_ties() {
        // (1,4) (2,2) (4,1) are the front; (3,3) is dominated by (2,2) only; (2,2) twice is a
        // tie (neither dominates the other); (4,4) is dominated by (3,3) as well.
        let pts = [
            p(&[1.0, 4.0]),
            p(&[2.0, 2.0]),
            p(&[4.0, 1.0]),
            p(&[3.0, 3.0]),
            p(&[2.0, 2.0]),
            p(&[4.0, 4.0]),
        ];
        assert_eq!(ranks(&pts), [1, 1, 1, 2, 1, 3]);
        assert!(!dominates(&pts[1], &pts[4]) && !dominates(&pts[4], &pts[1]));
    }

    #[test]
    fn infeasible_points_rank_after_feasible_ones_by_violation_even_when_all_are() {
        let pts = [
            infeasible(&[0.0, 0.0], 2.0),
            p(&[5.0, 5.0]),
            infeasible(&[9.0, 9.0], 0.5),
        ];
        assert_eq!(ranks(&pts), [3, 1, 2]);
        // Every point violates: the least violation is the front.
        let all = [
            infeasible(&[0.0, 0.0], 2.0),
            infeasible(&[9.0, 9.0], 0.5),
            infeasible(&[1.0, 1.0], 0.5),
        ];
        assert_eq!(ranks(&all), [2, 1, 1]);
        assert_eq!(order(&all), [1, 2, 0]);
    }

    #[test]
    fn hypervolume_by_hand_in_two_and_three_dimensions() {
        let front = vec![vec![1.0, 4.0], vec![2.0, 2.0], vec![4.0, 1.0]];
        // Reference (5, 5): staircase 4x1 + 3x2 + 1x1 = 4 + 6 + 1 = 11.
        assert_eq!(hypervolume(&front, &[5.0, 5.0]), 11.0);
        // A dominated point and one beyond the reference add nothing.
        let mut more = front.clone();
        more.push(vec![3.0, 3.0]);
        more.push(vec![0.0, 6.0]);
        assert_eq!(hypervolume(&more, &[5.0, 5.0]), 11.0);
        assert_eq!(contributions(&front, &[5.0, 5.0]), [1.0, 4.0, 1.0]);
        // 3-D: two boxes from the origin, 2x1x1 and 1x2x1 (overlap 1x1x1), with reference
        // (2, 2, 1): 2 + 2 - 1 = 3; a third point (0,0,0.5) adds the box 2x2x0.5 less the
        // overlap 2x1x0.5 + 1x2x0.5 - 1x1x0.5 = 1.5 -> 3 + 2 - 1.5 = 3.5.
        let cubes = vec![vec![0.0, 1.0, 0.0], vec![1.0, 0.0, 0.0]];
        assert!((hypervolume(&cubes, &[2.0, 2.0, 1.0]) - 3.0).abs() < 1e-12);
        let mut three = cubes.clone();
        three.push(vec![0.0, 0.0, 0.5]);
        assert!((hypervolume(&three, &[2.0, 2.0, 1.0]) - 3.5).abs() < 1e-12);
        assert_eq!(hypervolume(&[], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn the_knee_is_nearest_the_ideal_point_after_scaling() {
        // Accuracy loss against seconds: the middle point gives up little of either.
        let front = vec![vec![-99.4, 300.0], vec![-99.3, 120.0], vec![-98.0, 100.0]];
        assert_eq!(knee(&front), Some(1));
        assert_eq!(knee(&[]), None);
        assert_eq!(
            knee(&[vec![1.0, 1.0], vec![1.0, 1.0]]),
            Some(0),
            "ties: the first"
        );
    }

    #[test]
    fn order_puts_the_front_first_and_its_extreme_points_before_crowded_ones() {
        let pts = [
            p(&[3.0, 3.0]),
            p(&[1.0, 4.0]),
            p(&[2.0, 2.0]),
            p(&[4.0, 1.0]),
            p(&[2.1, 2.1]),
        ];
        let o = order(&pts);
        assert_eq!(&o[3..], [4, 0], "ranks 2 and 3 last: {o:?}");
        assert!(o[..3].contains(&1) && o[..3].contains(&2) && o[..3].contains(&3));
    }
}
