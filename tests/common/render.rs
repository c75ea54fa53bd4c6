//! Renders an SVG (resvg) and counts its pixels: shared by the integration tests
//! (`common::render`) and the library's unit tests (`test_support::render`), so a chart is
//! checked as a picture, not as text.

use plotters::style::RGBColor;
use resvg::tiny_skia::{Color, Pixmap, Transform};
use resvg::usvg;

/// `svg` parsed and rendered at its own size on white, and whether fonts were found for
/// its text (the host's, through fontconfig's folders).
pub fn render(svg: &str) -> (Pixmap, bool) {
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // fontdb's generic families name fonts a minimal host may lack: use what is there.
    let families: Vec<String> = fonts
        .faces()
        .filter_map(|face| face.families.first().map(|(name, _)| name.clone()))
        .collect();
    let family = families
        .iter()
        .find(|name| name.as_str() == "DejaVu Sans")
        .or(families.first())
        .cloned();
    if let Some(family) = &family {
        fonts.set_sans_serif_family(family.clone());
        fonts.set_monospace_family(family.clone());
    }
    let tree = usvg::Tree::from_str(svg, &options).expect("the SVG parses");
    let size = tree.size().to_int_size();
    let mut pixmap = Pixmap::new(size.width(), size.height()).expect("a picture of some size");
    pixmap.fill(Color::WHITE);
    resvg::render(&tree, Transform::identity(), &mut pixmap.as_mut());
    (pixmap, family.is_some())
}

/// Pixels of `pixmap` in rows `rows` for which `wanted` holds.
pub fn count(
    pixmap: &Pixmap,
    rows: std::ops::Range<u32>,
    wanted: impl Fn(u8, u8, u8) -> bool,
) -> usize {
    rows.flat_map(|y| (0..pixmap.width()).map(move |x| (x, y)))
        .filter_map(|(x, y)| pixmap.pixel(x, y))
        .filter(|pixel| wanted(pixel.red(), pixel.green(), pixel.blue()))
        .count()
}

/// Pixels of about `color` (anti-aliased edges count when close).
pub fn of_color(pixmap: &Pixmap, color: RGBColor) -> usize {
    let near = |a: u8, b: u8| a.abs_diff(b) <= 24;
    count(pixmap, 0..pixmap.height(), |r, g, b| {
        near(r, color.0) && near(g, color.1) && near(b, color.2)
    })
}

/// Pixels in rows `rows` that are not white.
pub fn painted(pixmap: &Pixmap, rows: std::ops::Range<u32>) -> usize {
    count(pixmap, rows, |r, g, b| (r, g, b) != (255, 255, 255))
}
