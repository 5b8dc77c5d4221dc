"""List the new items of a source with yt-dlp, without extracting each video.

A flat listing gives one entry per video from the channel/playlist/feed pages themselves. Lists are newest
first, so a date filter with break-on-reject stops at the first entry older than the last sync: a
5,000-video channel costs one page. Django-free.
"""
import datetime as dt
import logging
from dataclasses import dataclass

import yt_dlp
from yt_dlp.utils import DateRange, RejectedVideoReached, unsmuggle_url

SKIPPED_LIVE_STATUSES = {
    "is_live": "a live stream is in progress; it is ingested once it has ended and been published",
    "is_upcoming": "an upcoming premiere or stream; it is ingested once it has been published",
    "post_live": "a stream that has just ended and is still being processed by the site",
}


# yt-dlp writes its errors to stderr even when quiet unless given a logger; they reach us as exceptions.
QUIET_PARAMS = {"quiet": True, "no_warnings": True, "noprogress": True, "logger": logging.getLogger("yt_dlp")}


class DiscoveryError(Exception):
    """The source could not be listed (removed, private, not a media page...); the message says why."""


@dataclass
class DiscoveredVideo:
    extractor: str
    video_id: str
    url: str
    title: str
    duration_s: float | None
    published_at: dt.datetime | None
    skip_reason: str = ""


@dataclass
class Listing:
    title: str
    videos: list


def discover(url, newer_than=None, backfill_days=None, backfill_videos=None, now=None):
    """The videos of a source published after `newer_than`; on the first sync (newer_than is None) at most
    `backfill_videos` of them, published in the last `backfill_days`. A single video URL is always listed."""
    first_sync = newer_than is None
    if first_sync and backfill_days:
        newer_than = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=backfill_days)
    accepted = []
    params = {
        **QUIET_PARAMS,
        "extract_flat": "in_playlist",
        "break_on_reject": True,
        # Fetch and filter list pages one at a time, so that the break stops the paging too.
        "lazy_playlist": True,
        # Apply the filters to flat entries too, not only to fully extracted videos.
        "compat_opts": {"playlist-match-filter"},
        "match_filter": NewerThan(newer_than, accepted),
    }
    if newer_than is not None:
        params["daterange"] = DateRange(start=newer_than.strftime("%Y%m%d"))
    if first_sync and backfill_videos:
        params["playlistend"] = backfill_videos
    with yt_dlp.YoutubeDL(params) as ydl:
        try:
            result = ydl.extract_info(url, download=False, process=False)
            if result.get("_type", "video") == "video":
                accepted.append(result)
            else:
                ydl.process_ie_result(result, download=False)
        except RejectedVideoReached:
            pass
        except yt_dlp.utils.DownloadError as error:
            raise DiscoveryError(clean_message(error)) from None
        videos = [to_discovered(ydl, entry) for entry in accepted]
    return Listing(title=result.get("title") or "", videos=[video for video in videos if video is not None])


class NewerThan:
    """yt-dlp match filter: rejects entries published before the cutoff and records the others.

    Flat entries often carry only a timestamp, which yt-dlp's daterange ignores, hence this filter. Recording
    here keeps the accepted entries even when break-on-reject ends the listing with an exception.
    """

    def __init__(self, cutoff, accepted):
        self.cutoff = cutoff
        self.accepted = accepted

    def __call__(self, entry, incomplete=False):
        published = published_at(entry)
        if self.cutoff is not None and published is not None and published <= self.cutoff:
            return f"published {published.isoformat()}, not after {self.cutoff.isoformat()}"
        # The playlist's own fields are matched first, as an entry with no URL: only items are recorded.
        if entry.get("_type") not in ("playlist", "multi_video") and (entry.get("url") or entry.get("id")):
            self.accepted.append(dict(entry))
        return None


def published_at(entry):
    if entry.get("timestamp") is not None:
        return dt.datetime.fromtimestamp(entry["timestamp"], dt.timezone.utc)
    if entry.get("upload_date"):
        return dt.datetime.strptime(entry["upload_date"], "%Y%m%d").replace(tzinfo=dt.timezone.utc)
    return None


def to_discovered(ydl, entry):
    """(extractor, id) from the flat entry when it has them, otherwise from the full extraction of the entry."""
    extractor = entry.get("ie_key") or entry.get("extractor_key")
    video_id = entry.get("id")
    url, smuggled = unsmuggle_url(entry.get("webpage_url") or entry.get("url") or "", {})
    if not video_id:
        video_id = smuggled.get("force_videoid")
        extractor = extractor or ("Generic" if video_id else None)
    if not (extractor and video_id):
        try:
            info = ydl.extract_info(url, download=False, process=False)
        except yt_dlp.utils.DownloadError:
            return None
        extractor, video_id = info.get("extractor_key") or info.get("ie_key"), info.get("id")
    return DiscoveredVideo(
        extractor=extractor,
        video_id=str(video_id),
        url=url,
        title=entry.get("title") or "",
        duration_s=entry.get("duration"),
        published_at=published_at(entry),
        skip_reason=SKIPPED_LIVE_STATUSES.get(entry.get("live_status"), ""),
    )


def clean_message(error):
    """yt-dlp's error text without its "ERROR: [extractor] id:" prefix noise."""
    return str(error).removeprefix("ERROR: ").strip()
