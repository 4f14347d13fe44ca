//! Stop strings over streamed text: held back while ambiguous, cut at the stop, even when
//! split across pieces.

use marlin_engine::sampler::StopChecker;

/// Feed `pieces`; returns (emitted text, whether it stopped, pieces consumed).
fn run(stops: &[&str], pieces: &[&str]) -> (String, bool, usize) {
    let mut c = StopChecker::new(stops.iter().map(|s| s.to_string()).collect());
    let mut out = String::new();
    for (i, p) in pieces.iter().enumerate() {
        let (text, hit) = c.push(p);
        out.push_str(&text);
        if hit {
            return (out, true, i + 1);
        }
    }
    out.push_str(&c.flush());
    (out, false, pieces.len())
}

#[test]
fn stop_inside_one_piece() {
    assert_eq!(run(&["END"], &["abc END def"]), ("abc ".into(), true, 1));
}

#[test]
fn stop_split_across_pieces() {
    assert_eq!(
        run(
            &["<|im_end|>"],
            &["Hello", " world<|", "im", "_end", "|>tail"]
        ),
        ("Hello world".into(), true, 5)
    );
}

#[test]
fn prefix_that_turns_out_not_to_be_a_stop_is_released() {
    let mut c = StopChecker::new(vec!["STOP".into()]);
    assert_eq!(c.push("abc ST"), ("abc ".into(), false));
    assert_eq!(c.push("ART"), ("START".into(), false));
    assert_eq!(c.push("x S"), ("x ".into(), false));
    assert_eq!(c.flush(), "S");
}

#[test]
fn earliest_of_several_stops_wins() {
    let (out, hit, _) = run(&["world", "lo w", "zzz"], &["hello wor", "ld"]);
    assert!(hit);
    assert_eq!(out, "hel");
}

#[test]
fn no_stop_emits_everything() {
    assert_eq!(
        run(&["\n\n"], &["a\n", "b\n", "c"]),
        ("a\nb\nc".into(), false, 3)
    );
    assert_eq!(run(&[], &["x", "y"]), ("xy".into(), false, 2));
}

#[test]
fn multibyte_stop_strings() {
    assert_eq!(
        run(&["終わり"], &["答え終", "わり!"]),
        ("答え".into(), true, 2)
    );
}

#[test]
fn after_a_stop_everything_is_swallowed() {
    let mut c = StopChecker::new(vec!["x".into()]);
    assert_eq!(c.push("ax"), ("a".into(), true));
    assert_eq!(c.push("more"), (String::new(), true));
    assert_eq!(c.matched(), Some("x"));
    assert_eq!(c.flush(), "");
}
