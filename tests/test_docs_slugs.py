"""GitHub's heading anchors (tools/docs/slugs.py), on headings whose slugs are easy to get wrong."""
import pytest

from tools.docs.slugs import anchors, github_slug, headings


@pytest.mark.parametrize("heading, slug", [
    ("Quick start", "quick-start"),
    ("The softmax form: `SoftmaxFocalLossLayer`", "the-softmax-form-softmaxfocallosslayer"),
    ("Example: `digit_grid` with a softmax", "example-digit_grid-with-a-softmax"),   # _ is kept
    ("Deploying: read-only installs, containers, threads", "deploying-read-only-installs-containers-threads"),
    ("γ and α, Γ upper-cased", "γ-and-α-γ-upper-cased"),       # Greek letters kept, lower-cased
    ("a – b", "a--b"),                       # the dash goes, each space becomes one hyphen
    ("param_str keys", "param_str-keys"),
    ("Why it's *fast* (v2.0)", "why-its-fast-v20"),
    ("See [the math](docs/math.md) here", "see-the-math-here"),   # link text, not its target
    ("x² ≤ 1 × 2 → ok", "x--1--2--ok"),      # superscripts and math symbols are not letters
    ("Ünïcödé café", "ünïcödé-café"),
    ("  padded  ", "padded"),
])
def test_github_slug(heading, slug):
    assert github_slug(heading) == slug


def test_duplicate_headings_are_numbered_in_order():
    text = "# Speed\n## Speed\n### Speed\n## Speed-1\n## Other\n"
    # "Speed-1" written by hand takes the slug a third "Speed" would get, as on GitHub.
    assert anchors(text) == ["speed", "speed-1", "speed-2", "speed-1-1", "other"]


def test_headings_inside_code_blocks_are_not_headings():
    text = "# Real\n```sh\n# a shell comment\n```\n~~~\n## also code\n~~~\n## After\n"
    assert [t for _, _, t in headings(text)] == ["Real", "After"]
    assert anchors(text) == ["real", "after"]


def test_heading_levels_and_closing_hashes():
    assert list(headings("### Three ###\nnot # a heading\n#NoSpace\n")) == [(1, 3, "Three")]
