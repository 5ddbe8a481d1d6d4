from coding.spans import Span, overlap_clusters, render_highlights, segments


def test_segments_cover_text_exactly_with_overlaps():
    segs = segments(10, [Span(1, 0, 5), Span(2, 3, 8), Span(3, 3, 5)])
    assert segs == [(0, 3, (1,)), (3, 5, (1, 2, 3)), (5, 8, (2,)), (8, 10, ())]


def test_render_escapes_and_keeps_text():
    content = "<b>x</b> & 🎉 नमस्ते"
    html = render_highlights(content, [Span(7, 0, 3), Span(8, 10, 12)])
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert html.count("<mark") == 2
    assert 'data-ann="7"' in html


def test_overlap_clusters():
    clusters = overlap_clusters([Span(1, 0, 4), Span(2, 2, 6), Span(3, 10, 12)])
    assert [(a, b, [s.id for s in m]) for a, b, m in clusters] == [(0, 6, [1, 2]), (10, 12, [3])]
