"""Realistic, deterministic feeds for the collection benchmark.

Swedish public-sector news as municipalities, regions and agencies publish it: RSS 2.0, Atom and
YouTube channel feeds, 10–100 KB each, 10–40 entries with HTML bodies. Everything is drawn from
one seeded random generator, so a seed always gives the same feeds (dates are anchored at the
start of the current UTC day, so that they stay recent for collectors that backfill a window).
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

YOUTUBE_NAMESPACE = "http://www.youtube.com/xml/schemas/2015"

PLACES = [
    "Katrineholm", "Flen", "Vingåker", "Eskilstuna", "Strängnäs", "Nyköping", "Gnesta",
    "Trosa", "Oxelösund", "Västerås", "Örebro", "Linköping", "Norrköping", "Jönköping",
    "Växjö", "Kalmar", "Karlskrona", "Kristianstad", "Malmö", "Lund", "Helsingborg",
    "Halmstad", "Borås", "Göteborg", "Uddevalla", "Trollhättan", "Skövde", "Karlstad",
    "Falun", "Borlänge", "Gävle", "Sundsvall", "Härnösand", "Östersund", "Umeå",
    "Skellefteå", "Luleå", "Kiruna", "Piteå", "Visby", "Mölndal", "Södertälje", "Täby",
    "Nacka", "Uppsala", "Enköping", "Älmhult", "Ängelholm", "Åre", "Öckerö",
]  # fmt: skip
AGENCIES = [
    "Trafikverket", "Skatteverket", "Försäkringskassan", "Polisen", "Krisinformation",
    "Folkhälsomyndigheten", "Länsstyrelsen", "Myndigheten för samhällsskydd och beredskap",
    "Socialstyrelsen", "Naturvårdsverket", "Boverket", "Livsmedelsverket", "Arbetsförmedlingen",
    "Kriminalvården", "Skolverket", "Transportstyrelsen", "Energimyndigheten", "SMHI",
]  # fmt: skip
STREETS = [
    "Storgatan", "Drottninggatan", "Kungsgatan", "Järnvägsgatan", "Södra vägen", "Östra Ringen",
    "Skolgatan", "Björkvägen", "Älvgatan", "Hamngatan", "Industrigatan", "Västra Allén",
]  # fmt: skip
AREAS = [
    "Norra Ängen", "Sjöstaden", "Kvarnbacken", "Östermalm", "Ekdalen", "Brandstationen",
    "Stationsområdet", "Hagalund", "Åbacka", "Björkhagen", "Lövsta", "Gärdet",
]  # fmt: skip
TOPICS = [
    "Bygga och bo", "Trafik och gator", "Förskola och skola", "Omsorg och stöd",
    "Kultur och fritid", "Miljö och hälsa", "Kommun och politik", "Näringsliv och arbete",
    "Krisberedskap",
]  # fmt: skip
FEED_KINDS = ["Nyheter", "Pressmeddelanden", "Driftinformation", "Evenemang", "Lediga jobb"]

TITLES = [
    "{place} bygger ny förskola i {area}",
    "Vägarbete på {street} från och med {day} {month}",
    "Kommunfullmäktige har beslutat om budget för {year}",
    "Ändrade öppettider på biblioteket i {place} under jul och nyår",
    "Nu kan du söka föreningsbidrag för {year}",
    "Vattenläcka i {area} – så påverkas du",
    "Ny detaljplan för {area} ute på samråd",
    "Höstlovsaktiviteter för barn och unga i {place}",
    "Trafikomläggning vid {street} under {month}",
    "Information om snöröjning och halkbekämpning",
    "Medborgardialog om framtidens {area}",
    "Kokningsrekommendation för dricksvatten i {area} är hävd",
    "Så här sorterar du ditt matavfall från {day} {month}",
    "Ökad risk för brand i skog och mark – eldningsförbud i {place}",
    "Ny gång- och cykelväg mellan {area} och centrum",
    "Äldreomsorgen i {place} får nytt trygghetslarm",
    "Resultat från årets brukarundersökning inom förskolan",
    "Öppet hus på gymnasieskolorna i {place}",
    "Kulturpriset {year} går till en förening i {area}",
    "Störningar i kollektivtrafiken på grund av {street}",
]
SENTENCES = [
    "Arbetet påbörjas under vecka {week} och beräknas pågå i ungefär {n} veckor.",
    "Under tiden leds trafiken om via {street}, och framkomligheten kan vara begränsad.",
    "Kommunen ber boende i {area} att ha överseende med att det tidvis blir störande ljud.",
    "Beslutet fattades av kommunfullmäktige i {place} på måndagskvällen efter en lång debatt.",
    "Förskolan får plats för {n}0 barn och ska stå klar till hösten {year}.",
    "Du som har frågor är välkommen att kontakta kommunens kontaktcenter på telefon.",
    "Ärendet har varit ute på remiss hos berörda nämnder och föreningar i {place}.",
    "Satsningen är en del av arbetet för en hållbar och trygg kommun för alla åldrar.",
    "Läs mer om hur du påverkas och vilka åtgärder som görs på kommunens webbplats.",
    "Räddningstjänsten uppmanar alla att vara försiktiga och följa myndigheternas råd.",
    "Det går också bra att lämna synpunkter digitalt fram till den {day} {month}.",
    "Samrådet är öppet för alla, och handlingarna finns att läsa i stadshuset i {place}.",
    "Åtgärden väntas minska utsläppen och förbättra luftkvaliteten längs {street}.",
    "Föräldrar och vårdnadshavare får mer information via skolans lärplattform.",
    "Även näringsidkare i {area} är välkomna att delta i dialogen om områdets framtid.",
    "Det här påverkar både gående, cyklister och bilister i närheten av {street}.",
    "Kostnaden beräknas till {n},{n} miljoner kronor och finansieras inom befintlig budget.",
    "Målet är att fler ska känna sig delaktiga i hur {place} utvecklas de kommande åren.",
    "Öppettiderna gäller från den {day} {month} och tills vidare.",
    "Äldre personer och andra i riskgrupper bör vara särskilt uppmärksamma.",
    "Vid akut fara för liv, egendom eller miljö – ring alltid 112.",
    "Hör gärna av dig till vår miljö- och hälsoskyddsavdelning om du har frågor.",
]
MONTHS = [
    "januari", "februari", "mars", "april", "maj", "juni",
    "juli", "augusti", "september", "oktober", "november", "december",
]  # fmt: skip
AUTHORS = [
    "Kommunikationsavdelningen",
    "Anna Öberg",
    "Erik Åström",
    "Lena Häggström",
    "Webbredaktionen",
]


@dataclass
class Entry:
    guid: str
    title: str
    link: str
    published: datetime
    updated: datetime
    author: str
    category: str
    html: str
    video_id: str | None = None  # YouTube entries only
    views: int = 0
    likes: int = 0


@dataclass
class Feed:
    index: int
    kind: str  # "rss" | "atom" | "youtube"
    path: str  # the URL path, below the served root
    organisation: str
    title: str
    host: str
    entries: list[Entry] = field(default_factory=list)  # newest first
    revision: int = 0  # bumped on each churn, so a churned file never renders identically

    @property
    def key(self) -> str:
        return f"bench-{self.index:05d}"


def _slug(text: str) -> str:
    table = str.maketrans({"å": "a", "ä": "a", "ö": "o", "Å": "A", "Ä": "A", "Ö": "O", " ": "-"})
    return "".join(c for c in text.translate(table).lower() if c.isalnum() or c == "-")


class FeedFactory:
    """Makes feeds and entries from one seeded generator."""

    def __init__(self, seed: int, anchor: datetime | None = None) -> None:
        self.rng = random.Random(seed)
        self.anchor = anchor or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self._serial = 0  # makes every guid unique across all feeds and churns

    def _fill(self, template: str) -> str:
        rng = self.rng
        return template.format(
            place=rng.choice(PLACES),
            area=rng.choice(AREAS),
            street=rng.choice(STREETS),
            day=rng.randint(1, 28),
            month=rng.choice(MONTHS),
            year=self.anchor.year + rng.randint(0, 1),
            week=rng.randint(1, 52),
            n=rng.randint(2, 9),
        )

    def _html(self, target_bytes: int, base: str) -> str:
        """An article body as publishers' CMSs write it, about `target_bytes` long."""
        rng = self.rng
        parts: list[str] = []
        size = 0
        while size < target_bytes:
            roll = rng.random()
            if roll < 0.12:
                items = "".join(
                    f"<li>{escape(self._fill(rng.choice(SENTENCES)))}</li>"
                    for _ in range(rng.randint(2, 4))
                )
                part = f"<ul>{items}</ul>"
            elif roll < 0.18:
                part = (
                    f'<p><img src="{base}/images/{rng.randint(1000, 9999)}.jpg" '
                    f'alt="{escape(self._fill(rng.choice(TITLES)))}" width="800" height="450"></p>'
                )
            elif roll < 0.24:
                part = f"<h2>{escape(self._fill(rng.choice(TITLES)))}</h2>"
            else:
                sentences = " ".join(
                    escape(self._fill(rng.choice(SENTENCES))) for _ in range(rng.randint(2, 6))
                )
                part = f"<p>{sentences}</p>"
            parts.append(part)
            size += len(part.encode())
        parts.append(f'<p><a href="{base}/kontakt">Kontakta oss</a> för mer information.</p>')
        return "".join(parts)

    def _video_id(self) -> str:
        alphabet = string.ascii_letters + string.digits + "-_"
        # The serial keeps ids unique; the random tail makes them look like YouTube's.
        head = f"{self._serial:05d}"
        return head + "".join(self.rng.choice(alphabet) for _ in range(11 - len(head)))

    def entry(self, feed: Feed, published: datetime, body_bytes: int) -> Entry:
        rng = self.rng
        self._serial += 1
        title = self._fill(rng.choice(TITLES))
        base = f"https://{feed.host}"
        slug = _slug(title)[:60]
        video_id = self._video_id() if feed.kind == "youtube" else None
        if video_id:
            guid = f"yt:video:{video_id}"
            link = f"https://www.youtube.com/watch?v={video_id}"
        elif feed.kind == "atom":
            guid = f"tag:{feed.host},{published.year}:nyhet-{self._serial}"
            link = f"{base}/nyheter/{slug}-{self._serial}"
        else:
            guid = f"{feed.host}-{feed.index}-{self._serial}"
            link = f"{base}/nyheter/{published:%Y-%m}/{slug}.html"
        return Entry(
            guid=guid,
            title=title,
            link=link,
            published=published,
            updated=published + timedelta(minutes=rng.randint(0, 600)),
            author=rng.choice(AUTHORS),
            category=rng.choice(TOPICS),
            html=self._html(body_bytes, base),
            video_id=video_id,
            views=rng.randint(40, 250_000) if video_id else 0,
            likes=rng.randint(0, 900) if video_id else 0,
        )

    def feed(self, index: int) -> Feed:
        rng = self.rng
        roll = rng.random()
        kind = "rss" if roll < 0.45 else "atom" if roll < 0.85 else "youtube"
        if rng.random() < 0.7:
            place = rng.choice(PLACES)
            organisation = rng.choice([f"{place}s kommun", f"{place} stad", f"Region {place}"])
            host = f"www.{_slug(place)}.se"
        else:
            organisation = rng.choice(AGENCIES)
            host = f"www.{_slug(organisation.split()[0])}.se"
        feed_kind = "Video" if kind == "youtube" else rng.choice(FEED_KINDS)
        feed = Feed(
            index=index,
            kind=kind,
            path=f"/feeds/{index:05d}-{_slug(organisation)}-{_slug(feed_kind)}.xml",
            organisation=organisation,
            title=f"{organisation} – {feed_kind}",
            host=host,
        )
        # Size is drawn first and the bodies fitted to it, so feeds span 10–100 KB whatever
        # their entry count (envelope and metadata take ~700 bytes per entry, and escaping the
        # markup adds about a fifth).
        count = rng.randint(10, 40)
        target = rng.randint(10_000, 100_000)
        body = max(120, (target // count - 700) * 4 // 5)
        when = self.anchor
        for _ in range(count):
            when -= timedelta(minutes=rng.randint(30, 720))
            feed.entries.append(self.entry(feed, when, rng.randint(body * 4 // 5, body * 6 // 5)))
        return feed

    def churn(self, feed: Feed) -> None:
        """Three new entries on top and one corrected title, as a publisher's day brings."""
        rng = self.rng
        feed.revision += 1
        average = sum(len(e.html) for e in feed.entries) // len(feed.entries)
        fresh = [
            self.entry(feed, self.anchor + timedelta(hours=feed.revision * 3 - i), average)
            for i in range(3)
        ]
        feed.entries[:0] = fresh
        corrected = rng.choice(feed.entries[3:])
        corrected.title = f"Rättelse: {corrected.title}"
        corrected.updated = self.anchor + timedelta(hours=feed.revision * 3)


def render(feed: Feed, base_url: str) -> bytes:
    if feed.kind == "rss":
        return _render_rss(feed, base_url).encode()
    return _render_atom(feed, base_url).encode()


def _render_rss(feed: Feed, base_url: str) -> str:
    site = f"https://{feed.host}"
    items = []
    for e in feed.entries:
        items.append(
            "<item>\n"
            f"<title>{escape(e.title)}</title>\n"
            f"<link>{escape(e.link)}</link>\n"
            f'<guid isPermaLink="false">{escape(e.guid)}</guid>\n'
            f"<pubDate>{format_datetime(e.published)}</pubDate>\n"
            f"<dc:creator>{escape(e.author)}</dc:creator>\n"
            f"<category>{escape(e.category)}</category>\n"
            f"<description>{escape(e.html)}</description>\n"
            "</item>"
        )
    newest = max(e.updated for e in feed.entries)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
        f"<title>{escape(feed.title)}</title>\n"
        f"<link>{site}/</link>\n"
        f"<description>Senaste nytt från {escape(feed.organisation)}</description>\n"
        "<language>sv-SE</language>\n"
        f"<lastBuildDate>{format_datetime(newest)}</lastBuildDate>\n"
        "<generator>SiteVision</generator>\n"
        f'<atom:link href={quoteattr(base_url + feed.path)} rel="self" '
        'type="application/rss+xml"/>\n' + "\n".join(items) + "\n</channel>\n</rss>\n"
    )


def _render_atom(feed: Feed, base_url: str) -> str:
    youtube = feed.kind == "youtube"
    channel = f"UC{feed.index:06d}{_slug(feed.organisation)[:14]}"
    entries = []
    for e in feed.entries:
        if youtube:
            entries.append(
                "<entry>\n"
                f"<id>{escape(e.guid)}</id>\n"
                f"<yt:videoId>{e.video_id}</yt:videoId>\n"
                f"<yt:channelId>{channel}</yt:channelId>\n"
                f"<title>{escape(e.title)}</title>\n"
                f'<link rel="alternate" href={quoteattr(e.link)}/>\n'
                f"<author><name>{escape(feed.organisation)}</name></author>\n"
                f"<published>{e.published.isoformat()}</published>\n"
                f"<updated>{e.updated.isoformat()}</updated>\n"
                "<media:group>\n"
                f"<media:title>{escape(e.title)}</media:title>\n"
                f'<media:content url="https://www.youtube.com/v/{e.video_id}?version=3" '
                'type="application/x-shockwave-flash" width="640" height="390"/>\n'
                f'<media:thumbnail url="https://i1.ytimg.com/vi/{e.video_id}/hqdefault.jpg" '
                'width="480" height="360"/>\n'
                # YouTube sends plain text here; the body's markup is flattened to keep sizes.
                f"<media:description>{escape(_flatten(e.html))}</media:description>\n"
                "<media:community>\n"
                f'<media:starRating count="{e.likes}" average="5.00" min="1" max="5"/>\n'
                f'<media:statistics views="{e.views}"/>\n'
                "</media:community>\n</media:group>\n</entry>"
            )
        else:
            entries.append(
                "<entry>\n"
                f"<id>{escape(e.guid)}</id>\n"
                f'<title type="text">{escape(e.title)}</title>\n'
                f'<link rel="alternate" type="text/html" href={quoteattr(e.link)}/>\n'
                f"<published>{e.published.isoformat()}</published>\n"
                f"<updated>{e.updated.isoformat()}</updated>\n"
                f"<author><name>{escape(e.author)}</name></author>\n"
                f"<category term={quoteattr(e.category)}/>\n"
                f'<content type="html">{escape(e.html)}</content>\n'
                "</entry>"
            )
    newest = max(e.updated for e in feed.entries)
    namespaces = (
        f' xmlns:yt="{YOUTUBE_NAMESPACE}" xmlns:media="http://search.yahoo.com/mrss/"'
        if youtube
        else ""
    )
    feed_id = f"yt:channel:{channel}" if youtube else f"tag:{feed.host},2026:{feed.key}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="sv"{namespaces}>\n'
        f"<id>{feed_id}</id>\n"
        f"<title>{escape(feed.title)}</title>\n"
        f'<link rel="self" href={quoteattr(base_url + feed.path)}/>\n'
        f'<link rel="alternate" href="https://{feed.host}/"/>\n'
        f"<updated>{newest.isoformat()}</updated>\n"
        f"<author><name>{escape(feed.organisation)}</name></author>\n"
        + "\n".join(entries)
        + "\n</feed>\n"
    )


def _flatten(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html).replace("  ", " ").strip()


def write_feed(feed: Feed, root: Path, base_url: str) -> int:
    """Write the feed below root; returns its size in bytes."""
    data = render(feed, base_url)
    target = root / feed.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: nginx never serves a half-written file, and the new inode gets a new
    # mtime and size, which is what nginx's ETag is made of.
    temporary = target.with_suffix(".tmp")
    temporary.write_bytes(data)
    temporary.chmod(0o644)
    temporary.replace(target)
    return len(data)
