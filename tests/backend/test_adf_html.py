"""ADF as HTML for the snapshot browser: what Jira stores is shown, nothing it holds can run in the page."""

from __future__ import annotations

from backend.ui.adf import render


def _doc(*content):
    return {"type": "doc", "version": 1, "content": list(content)}


def _p(*inline):
    return {"type": "paragraph", "content": list(inline)}


def _t(text, *marks):
    return {"type": "text", "text": text, "marks": list(marks)}


def test_text_is_escaped_and_only_safe_links_survive():
    html = render(
        _doc(
            _p(_t("<script>alert(1)</script>"), _t(" & more")),
            _p(_t("bad", {"type": "link", "attrs": {"href": "javascript:alert(1)"}})),
            _p(_t("good", {"type": "link", "attrs": {"href": 'https://example.com/?a=1&b="2"'}})),
            {
                "type": "codeBlock",
                "attrs": {"language": '"><img src=x onerror=1>'},
                "content": [_t("<b>x</b>")],
            },
        )
    )
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in html and ">bad<" in html  # the text stays, the link goes
    assert (
        '<a href="https://example.com/?a=1&amp;b=&#34;2&#34;" rel="noopener noreferrer nofollow">good</a>'
        in html
    )
    assert "<img" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_structure_panels_tables_mentions_and_media():
    doc = _doc(
        {"type": "heading", "attrs": {"level": 1}, "content": [_t("Plan")]},
        {
            "type": "bulletList",
            "content": [{"type": "listItem", "content": [_p(_t("one", {"type": "strong"}))]}],
        },
        {"type": "panel", "attrs": {"panelType": "warning"}, "content": [_p(_t("careful"))]},
        {
            "type": "table",
            "content": [
                {
                    "type": "tableRow",
                    "content": [
                        {"type": "tableHeader", "content": [_p(_t("h"))]},
                        {"type": "tableCell", "content": [_p(_t("c"))]},
                    ],
                }
            ],
        },
        _p({"type": "mention", "attrs": {"id": "abc", "text": "@Ada"}}),
        {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "m-1", "alt": "report.pdf"}}]},
        {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "m-2", "alt": "gone.png"}}]},
    )
    html = render(doc, lambda mid, alt: ("/files/7", alt) if alt == "report.pdf" else None)
    assert "<h3>Plan</h3>" in html  # below the page's own headings
    assert "<ul><li><p><strong>one</strong></p></li></ul>" in html
    assert '<div class="panel panel-warning" role="note"><p>careful</p></div>' in html
    assert "<th><p>h</p></th><td><p>c</p></td>" in html
    assert '<span class="mention">@Ada</span>' in html
    assert '<a class="attachment" href="/files/7">📎 report.pdf</a>' in html
    assert "(attachment gone.png, not in this snapshot)" in html


def test_a_document_nested_too_deep_is_cut_with_a_note():
    node = _p(_t("bottom"))
    for _ in range(500):
        node = {"type": "blockquote", "content": [node]}
    html = render(_doc(node))
    assert "nested too deep to show" in html and "bottom" not in html
