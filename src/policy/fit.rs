//! One least-squares line, y = a + b·x, from exact running sums in `i128`: points can be
//! added and taken away again (a sliding window) at O(1), and the slope and r² do not
//! depend on the order or drift the way running float sums do. The callers keep x and y
//! small enough (milliseconds, KiB, bytes of a few points) for the sums to stay in `i128`.

/// Running sums of a least-squares fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LineFit {
    count: i128,
    x: i128,
    y: i128,
    xx: i128,
    xy: i128,
    yy: i128,
}

impl LineFit {
    /// Adds the point (x, y).
    pub fn add(&mut self, x: i128, y: i128) {
        self.change(x, y, 1);
    }

    /// Takes back a point added before.
    pub fn remove(&mut self, x: i128, y: i128) {
        self.change(x, y, -1);
    }

    fn change(&mut self, x: i128, y: i128, sign: i128) {
        self.count += sign;
        self.x += sign * x;
        self.y += sign * y;
        self.xx += sign * x * x;
        self.xy += sign * x * y;
        self.yy += sign * y * y;
    }

    /// How many points are in.
    pub fn count(&self) -> usize {
        usize::try_from(self.count).unwrap_or(0)
    }

    /// The slope (y per x) and r² (0 when y does not vary), once two distinct x are in.
    pub fn line(&self) -> Option<(f64, f64)> {
        // n² × variances and covariance, exact.
        let sxx = self.count * self.xx - self.x * self.x;
        let sxy = self.count * self.xy - self.x * self.y;
        let syy = self.count * self.yy - self.y * self.y;
        if sxx <= 0 {
            return None;
        }
        let slope = sxy as f64 / sxx as f64;
        let r_squared = if syy <= 0 {
            0.0
        } else {
            let r = sxy as f64 / ((sxx as f64).sqrt() * (syy as f64).sqrt());
            (r * r).min(1.0)
        };
        Some((slope, r_squared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_lines_noisy_lines_and_removal() {
        let mut fit = LineFit::default();
        assert_eq!(fit.line(), None);
        fit.add(1, 10);
        assert_eq!(fit.line(), None, "one x says nothing");
        fit.add(1, 12);
        assert_eq!(fit.line(), None, "nor one x twice");
        fit.add(3, 20);
        fit.add(5, 30);
        let (slope, r2) = fit.line().unwrap();
        assert!(slope > 4.0 && r2 > 0.9, "{slope} {r2}");
        fit.remove(1, 12);
        let (slope, r2) = fit.line().unwrap();
        assert_eq!(slope, 5.0);
        assert!((r2 - 1.0).abs() < 1e-12);
        let mut flat = LineFit::default();
        flat.add(0, 7);
        flat.add(9, 7);
        assert_eq!(flat.line(), Some((0.0, 0.0)));
        assert_eq!(flat.count(), 2);
    }
}
