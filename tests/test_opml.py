"""OPML in and out: reading readers' exports, writing TOML include files, writing OPML."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.config import SourceConfig, load_config
from monitor.opml import (
    ExportedFeed,
    OpmlError,
    OpmlFeed,
    read_opml,
    render_opml,
    render_sources_toml,
)

# What a feed reader's export looks like: folders in folders, a folder-less feed, a plain link
# outline with no xmlUrl, a feed:// address no HTTP client can fetch, and padding around a URL.
READER_EXPORT = """\
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head>
    <title>Prenumerationer</title>
    <dateCreated>Mon, 23 Nov 2026 08:00:00 GMT</dateCreated>
  </head>
  <body>
    <outline text="Nyheter från Flen" title="Nyheter från Flen" type="rss"
             xmlUrl="https://www.flen.se/rss" htmlUrl="https://www.flen.se/"/>
    <outline text="Sörmland" title="Sörmland">
      <outline text="Kommuner" title="Kommuner">
        <outline text="Katrineholms kommun" type="rss"
                 xmlUrl="  https://www.katrineholm.se/rss  "/>
        <outline text="Vingåker" title="Vingåkers kommun" type="rss"
                 xmlUrl="http://www.vingaker.se/nyheter.xml"/>
        <outline text="Kommunens webbplats" type="link" url="https://www.gnesta.se/"/>
      </outline>
      <outline text="Region Sörmland" title="Region Sörmland" type="rss"
               xmlUrl="https://regionsormland.se/feed.atom"/>
      <outline text="Gammal podd" title="Gammal podd" type="rss"
               xmlUrl="feed://www.example.se/podd.xml"/>
    </outline>
    <outline text="Tom mapp" title="Tom mapp"/>
  </body>
</opml>
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_read_opml_finds_http_feeds_in_nested_folders_with_nearest_folder_as_category(
    tmp_path: Path,
) -> None:
    feeds = read_opml(str(write(tmp_path / "export.opml", READER_EXPORT)))

    assert feeds == [
        OpmlFeed("https://www.flen.se/rss", "Nyheter från Flen", None),
        OpmlFeed("https://www.katrineholm.se/rss", "Katrineholms kommun", "Kommuner"),
        OpmlFeed("http://www.vingaker.se/nyheter.xml", "Vingåkers kommun", "Kommuner"),
        OpmlFeed("https://regionsormland.se/feed.atom", "Region Sörmland", "Sörmland"),
    ]


def test_read_opml_with_no_feeds_gives_an_empty_list(tmp_path: Path) -> None:
    path = write(
        tmp_path / "empty.opml",
        '<?xml version="1.0"?>\n<opml version="1.0"><head/><body/></opml>\n',
    )

    assert read_opml(str(path)) == []


def test_invalid_xml_is_an_opml_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.opml", "<opml><body><outline xmlUrl='https://a.se/rss'>")

    with pytest.raises(OpmlError, match="not valid OPML") as caught:
        read_opml(str(path))

    assert str(caught.value).startswith(f"{path}: not valid OPML: ")


def test_xml_that_is_not_opml_is_an_opml_error_naming_the_file(tmp_path: Path) -> None:
    rss = Path(__file__).parent / "fixtures" / "feeds" / "rss20.xml"

    with pytest.raises(OpmlError) as caught:
        read_opml(str(rss))

    assert str(caught.value) == f"{rss}: not valid OPML: no <opml><body>"


def test_missing_opml_file_is_an_opml_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.opml"

    with pytest.raises(OpmlError) as caught:
        read_opml(str(path))

    assert str(caught.value) == f"{path}: cannot read: No such file or directory"


def _load_with_include(
    tmp_path: Path, included_toml: str, config_body: str = ""
) -> list[SourceConfig]:
    write(tmp_path / "sources" / "imported.toml", included_toml)
    config_path = write(
        tmp_path / "config.toml", 'include = ["sources/*.toml"]\n' + textwrap.dedent(config_body)
    )
    return list(load_config(config_path).sources)


def test_rendered_sources_take_the_organisation_from_the_title_never_the_folder(
    tmp_path: Path,
) -> None:
    # Issue 13: the folder ("Kommuner") was every feed's organisation.
    feeds = read_opml(str(write(tmp_path / "export.opml", READER_EXPORT)))
    rendered = render_sources_toml(feeds, group=None, organisation=None, origin="export.opml")

    sources = _load_with_include(tmp_path, rendered)

    assert [(s.platform, s.url, s.organisation, s.name, s.groups) for s in sources] == [
        ("feed", "https://www.flen.se/rss", "Nyheter från Flen", None, ()),
        ("feed", "https://www.katrineholm.se/rss", "Katrineholms kommun", None, ()),
        ("feed", "http://www.vingaker.se/nyheter.xml", "Vingåkers kommun", None, ()),
        ("feed", "https://regionsormland.se/feed.atom", "Region Sörmland", None, ()),
    ]
    assert rendered.startswith("# Imported from export.opml on ")
    # The admin is told where each organisation came from, and what the folder was.
    assert 'organisation = "Katrineholms kommun"  # from the feed\'s title: check' in rendered
    assert "# OPML folder: Kommuner" in rendered


def test_a_title_naming_the_publisher_before_a_dash_gives_the_organisation(
    tmp_path: Path,
) -> None:
    rendered = render_sources_toml(
        [OpmlFeed("https://www.flen.se/rss", "Flens kommun – Nyheter", "Kommuner")],
        group=None,
        organisation=None,
        origin="export.opml",
        declared_groups={"kommuner": "Kommuner", "regioner": "Regioner"},
    )

    [source] = _load_with_include(
        tmp_path, rendered, '[groups.kommuner]\nname = "Kommuner"\n[groups.regioner]\n'
    )

    # The folder names a declared group, so it becomes the group.
    assert (source.organisation, source.name, source.groups) == (
        "Flens kommun",
        "Flens kommun – Nyheter",
        ("kommuner",),
    )


def test_rendered_sources_carry_the_given_organisation_and_declared_group(tmp_path: Path) -> None:
    feeds = read_opml(str(write(tmp_path / "export.opml", READER_EXPORT)))
    rendered = render_sources_toml(
        feeds, group="kommuner", organisation="Sörmlands kommuner", origin="export.opml"
    )

    sources = _load_with_include(
        tmp_path, rendered, '[groups.kommuner]\nname = "Kommuner i Sörmland"\n'
    )

    assert {s.organisation for s in sources} == {"Sörmlands kommuner"}
    assert {s.groups for s in sources} == {("kommuner",)}
    assert [s.name for s in sources] == [
        "Nyheter från Flen",
        "Katrineholms kommun",
        "Vingåkers kommun",
        "Region Sörmland",
    ]


def test_feed_without_a_title_gets_a_placeholder_for_the_admin_to_fill_in(
    tmp_path: Path,
) -> None:
    rendered = render_sources_toml(
        [OpmlFeed("https://www.gnesta.se/rss", None, "Kommuner")],
        group=None,
        organisation=None,
        origin="export.opml",
    )

    [source] = _load_with_include(tmp_path, rendered)

    assert (source.organisation, source.name) == ("FYLL I", None)
    assert 'organisation = "FYLL I"  # the organisation publishing www.gnesta.se' in rendered


@pytest.mark.parametrize(
    "title",
    [
        'Kommunen "säger"',
        "Åtvidaberg, Älmhult & Örebro",
        "C:\\feeds\\nyheter",
        'Både \\ och "citat" och \\"',
        "Rad ett\nrad två\tmed tab",
        "emoji 📰 och ß",
    ],
)
def test_titles_with_quotes_swedish_letters_and_backslashes_survive_the_toml_round_trip(
    tmp_path: Path, title: str
) -> None:
    rendered = render_sources_toml(
        [OpmlFeed("https://www.example.se/rss?a=1&b=2", title, f"Mapp\x7f {title}")],
        group=None,
        organisation=None,
        origin="export.opml",
    )

    [source] = _load_with_include(tmp_path, rendered)

    assert source.url == "https://www.example.se/rss?a=1&b=2"
    assert source.organisation == title
    assert source.groups == ()  # the folder, with its control characters, is a comment


def test_title_with_a_delete_control_character_survives_the_toml_round_trip(
    tmp_path: Path,
) -> None:
    # XML 1.0 allows U+007F in attribute values (mis-encoded exports carry it); TOML basic
    # strings must escape it, so the generated include file must too.
    path = write(
        tmp_path / "export.opml",
        '<opml version="2.0"><body>'
        '<outline text="Flen&#127;s nyheter" xmlUrl="https://www.flen.se/rss"/>'
        "</body></opml>",
    )
    feeds = read_opml(str(path))
    rendered = render_sources_toml(feeds, group=None, organisation=None, origin="export.opml")

    [source] = _load_with_include(tmp_path, rendered)

    assert source.organisation == "Flen\x7fs nyheter"


def test_render_opml_then_read_opml_keeps_urls_titles_and_groups(tmp_path: Path) -> None:
    exported = [
        ExportedFeed("https://www.flen.se/rss", "Flens kommun", "kommuner"),
        ExportedFeed("https://regionsormland.se/feed.atom", "Region Sörmland", None),
        ExportedFeed("https://www.katrineholm.se/rss?typ=nyheter&sida=1", 'K "&" <K>', "kommuner"),
        ExportedFeed("https://www.msb.se/rss", "MSB", "myndigheter"),
    ]
    path = write(tmp_path / "out.opml", render_opml(exported))

    feeds = read_opml(str(path))

    assert sorted((f.url, f.title, f.category) for f in feeds) == sorted(
        (e.url, e.title, e.group) for e in exported
    )


def test_render_opml_is_opml_2_with_the_given_title(tmp_path: Path) -> None:
    document = render_opml(
        [ExportedFeed("https://www.flen.se/rss", "Flens kommun", None)], title="Bevakning"
    )

    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    assert "<title>Bevakning</title>" in document
