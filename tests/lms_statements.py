"""Statements shaped like real LMS output, for the export privacy tests.

The shapes follow what LMS plugins really send (Moodle's logstore_xapi test set, Canvas Caliper
events translated to xAPI): the sender is the actor, the receiver of a message or the subject of
a note is an Agent inside a context or activity-definition extension (often with no objectType),
the message text is the activity description, a grader's comment is result.response, the
Learning Locker "info" and w3id LMS extensions carry LMS ids, Caliper's own extension carries the
login, SIS id and IP address, and a profile page's IRI holds the user's LMS id. The people and
their texts are ours; PERSONAL lists every string of theirs that no default bundle may hold.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

MOODLE = "https://moodle.lakeside.example.edu"
CANVAS = "https://canvas.lakeside.example.edu"
INFO = "http://lrs.learninglocker.net/define/extensions/info"
EXTERNAL_ID = "https://w3id.org/learning-analytics/learning-management-system/external-id"
TO = "https://yetanalytics.com/profiles/prepositions/concepts/context-extensions/to"
FOR = "https://yetanalytics.com/profiles/prepositions/concepts/context-extensions/for"
NOTE_SUBJECT = "https://xapi.edlm/profiles/edlm-lms/concepts/activity-extensions/note-subject"
NOTE_SCOPE = "https://xapi.edlm/profiles/edlm-lms/concepts/context-extensions/note-subject-scope"
MOODLE_USER_ID = "https://moodle.org/xapi/extensions/user_id"
CALIPER = "https://purl.imsglobal.org/caliper/extensions/com.instructure.canvas"
IP_ADDRESS = "http://id.tincanapi.com/extension/ip-address"
USER_PROFILE = "http://id.tincanapi.com/activitytype/user-profile"

# Moodle identifies users by their numeric id, Canvas by its long user id.
PRIYA = {"name": "Priya Ramanathan", "account": {"homePage": MOODLE, "name": "55204171"}}
TOMASZ = {"name": "Tomasz Wójcik", "account": {"homePage": MOODLE, "name": "55209880"}}
TEACHER = {"name": "Adaeze Okonkwo", "account": {"homePage": MOODLE, "name": "55100423"}}
LIAM = {"name": "Liam O'Brien", "account": {"homePage": CANVAS, "name": "70000000483921"}}
MEI = {"objectType": "Agent", "name": "Mei Chen", "mbox": "mailto:mei.chen@students.lakeside.example.edu"}
NOOR_SHA1 = hashlib.sha1(b"mailto:noor.haddad@students.lakeside.example.edu").hexdigest()
NOOR = {"name": "Noor Haddad", "mbox_sha1sum": NOOR_SHA1}
ROSA = {"name": "Rosa Delgado", "openid": "https://id.lakeside.example.edu/openid/rosa-delgado"}

MESSAGE_SUBJECT = "Private: what happened at home"
MESSAGE_TEXT = "Tomasz, I cannot stop thinking about what happened at home. Write to priya.home@example.com"
NOTE_TEXT = "Parent phoned: custody arrangement changed, do not release to the father"
POST_TEXT = "I feel left out in group work since the move"
GRADE_COMMENT = "Priya, please see me about the paragraphs copied from another essay"
CANVAS_MESSAGE = "Mei, can you send me the notes? My login is lobrien27"

PEOPLE = [
    "Priya Ramanathan", "Priya", "Ramanathan", "55204171",
    "Tomasz Wójcik", "Tomasz", "Wójcik", "55209880",
    "Adaeze Okonkwo", "Okonkwo", "55100423",
    "Liam O'Brien", "O'Brien", "70000000483921", "lobrien27", "SIS-88412-K",
    "liam.obrien@students.lakeside.example.edu",
    "Mei Chen", "mei.chen@students.lakeside.example.edu",
    "Noor Haddad", NOOR_SHA1,
    "Rosa Delgado", "rosa-delgado",
    "STU-2291-X", "10.44.201.17", "priya.home@example.com",
]
PRIVATE_TEXT = [MESSAGE_SUBJECT, "what happened at home", NOTE_TEXT, "custody arrangement", POST_TEXT,
                "left out in group work", GRADE_COMMENT, "paragraphs copied", CANVAS_MESSAGE,
                "send me the notes"]
PERSONAL = PEOPLE + PRIVATE_TEXT
# Texts a bundle made with --include-free-text holds again (with the people in them replaced).
FREE_TEXT = ["cannot stop thinking about", NOTE_TEXT, "left out in group work", "paragraphs copied",
             "send me the notes"]
# Who may stay in such a bundle: names the statement does not give as an agent cannot be told
# from other words, and LMS ids written as plain values are the free JSON that was asked for.
UNRECOGNISABLE = {"STU-2291-X", "10.44.201.17", "SIS-88412-K", "lobrien27"}

_IDS = uuid.UUID("7d1c2a9e-5f0b-4c3e-9a65-1f2e3d4c5b6a")


def _id(n: int) -> str:
    return str(uuid.uuid5(_IDS, str(n)))


def _moodle_context(event: str, **extra: Any) -> dict[str, Any]:
    return {
        "platform": "Moodle", "language": "en",
        "contextActivities": {
            "category": [{"id": MOODLE, "definition": {"type": "http://id.tincanapi.com/activitytype/lms",
                                                        "name": {"en": "Lakeside Moodle"}}}],
            "grouping": [{"id": f"{MOODLE}/course/view.php?id=12",
                          "definition": {"type": "http://id.tincanapi.com/activitytype/lms/course",
                                         "name": {"en": "Year 8 English"}}}]},
        "extensions": {INFO: {"http://moodle.org": "4.1.0", "event_name": f"\\core\\event\\{event}",
                              "event_function": f"\\src\\transformer\\events\\core\\{event}"},
                       **extra},
    }


def lms_statements(day: int = 14) -> list[dict[str, Any]]:
    at = f"2026-09-{day:02d}T09:"
    return [
        {   # Moodle message_sent: the receiver in a context extension, the text in the description.
            "id": _id(1), "actor": PRIYA, "timestamp": at + "01:00Z",
            "verb": {"id": "http://activitystrea.ms/send", "display": {"en": "Sent"}},
            "object": {"id": f"{MOODLE}/course/view.php?id=12", "definition": {
                "type": "http://id.tincanapi.com/activitytype/chat-message",
                "name": {"en": MESSAGE_SUBJECT}, "description": {"en": MESSAGE_TEXT}}},
            "context": _moodle_context("message_sent", **{TO: TOMASZ}),
        },
        {   # Moodle note_created: the note's subject in an activity-definition extension.
            "id": _id(2), "actor": TEACHER, "timestamp": at + "02:00Z",
            "verb": {"id": "http://activitystrea.ms/create", "display": {"en": "Created"}},
            "object": {"objectType": "Activity", "id": f"{MOODLE}/notes/view.php?id=301", "definition": {
                "type": "http://activitystrea.ms/note", "name": {"en": "no subject"},
                "description": {"en": NOTE_TEXT},
                "extensions": {NOTE_SUBJECT: TOMASZ,
                               "https://xapi.edlm/profiles/edlm-lms/concepts/activity-extensions/note-type":
                                   "course"}}},
            "context": _moodle_context("note_created"),
        },
        {   # Moodle notes_viewed: the subject again, this time in the context.
            "id": _id(3), "actor": TEACHER, "timestamp": at + "03:00Z",
            "verb": {"id": "http://id.tincanapi.com/verb/viewed", "display": {"en": "Viewed"}},
            "object": {"id": f"{MOODLE}/notes/index.php", "definition": {
                "type": "https://w3id.org/xapi/acrossx/activities/webpage", "name": {"en": "Notes"},
                "extensions": {NOTE_SUBJECT: TOMASZ}}},
            "context": _moodle_context("notes_viewed", **{NOTE_SCOPE: TOMASZ}),
        },
        {   # Moodle assignment graded: the grader's comment in result.response.
            "id": _id(4), "actor": PRIYA, "timestamp": at + "04:00Z",
            "verb": {"id": "http://adlnet.gov/expapi/verbs/scored", "display": {"en": "attained grade for"}},
            "object": {"id": f"{MOODLE}/mod/assign/view.php?id=88", "definition": {
                "type": "http://adlnet.gov/expapi/activities/assessment",
                "name": {"en": "Essay: my family"}}},
            "result": {"score": {"raw": 11, "min": 0, "max": 20, "scaled": 0.55}, "completion": True,
                       "success": False, "response": GRADE_COMMENT},
            "context": {**_moodle_context("submission_graded"), "instructor": TEACHER},
        },
        {   # Moodle submission_viewed: whose submission, in a "for" extension.
            "id": _id(5), "actor": TEACHER, "timestamp": at + "05:00Z",
            "verb": {"id": "http://id.tincanapi.com/verb/viewed", "display": {"en": "Viewed"}},
            "object": {"id": f"{MOODLE}/mod/assign/view.php?id=88#submission", "definition": {
                "type": "https://xapi.edlm/profiles/edlm-lms/concepts/activity-types/submission",
                "name": {"en": "Essay: my family Submission"}}},
            "context": _moodle_context("submission_viewed", **{FOR: PRIYA}),
        },
        {   # Moodle forum user_report_viewed: the viewed user's id in the IRI and an extension,
            # their name in the activity name, their SIS id as the w3id external id.
            "id": _id(6), "actor": PRIYA, "timestamp": at + "06:00Z",
            "verb": {"id": "http://id.tincanapi.com/verb/viewed", "display": {"en": "viewed"}},
            "object": {"id": f"{MOODLE}/mod/forum/user.php?id=55209880&course=12", "definition": {
                "type": USER_PROFILE, "name": {"en": "forum posts of Tomasz Wójcik"},
                "extensions": {MOODLE_USER_ID: 55209880, EXTERNAL_ID: "STU-2291-X",
                               "https://moodle.org/xapi/extensions/course_id": 12}}},
            "context": _moodle_context("user_report_viewed"),
        },
        {   # Moodle forum post (Jisc profile: IP address and session in extensions).
            "id": _id(7), "actor": TOMASZ, "timestamp": at + "07:00Z",
            "verb": {"id": "http://id.tincanapi.com/verb/replied", "display": {"en": "replied to"}},
            "object": {"id": f"{MOODLE}/mod/forum/discuss.php?d=17#p230", "definition": {
                "type": "http://id.tincanapi.com/activitytype/forum-reply",
                "name": {"en": "Re: group work"}, "description": {"en": POST_TEXT}}},
            "context": _moodle_context("post_created", **{
                IP_ADDRESS: "10.44.201.17", "http://xapi.jisc.ac.uk/sessionId": "sess-ab12",
                "http://xapi.jisc.ac.uk/courseArea": {"http://xapi.jisc.ac.uk/vle_mod_id": "ENG8"}}),
        },
        {   # Canvas (Caliper translated): a message with recipients nested deep in an extension,
            # as an mbox agent, a Group of an openid and an mbox_sha1sum agent, and a Caliper Person.
            "id": _id(8), "actor": LIAM, "timestamp": at + "08:00Z",
            "verb": {"id": "http://activitystrea.ms/send", "display": {"en-US": "sent"}},
            "object": {"id": f"{CANVAS}/conversations/4411", "definition": {
                "type": "http://id.tincanapi.com/activitytype/chat-message",
                "description": {"en-US": CANVAS_MESSAGE}}},
            "context": {"platform": "Canvas LMS", "extensions": {
                CALIPER: {"user_login": "lobrien27", "user_sis_id": "SIS-88412-K",
                          "client_ip": "10.44.201.17", "root_account_id": "10000000000001",
                          "request_url": f"{CANVAS}/conversations?user_id=70000000483921",
                          "membership": {"member": {"id": f"{CANVAS}/users/70000000483921",
                                                    "type": "Person", "name": "Liam O'Brien"}}},
                "https://canvas.instructure.com/xapi/extensions/recipients": {"to": [MEI], "cc": {
                    "group": {"objectType": "Group", "name": "Study buddies", "member": [ROSA, NOOR]}}},
                "https://canvas.instructure.com/xapi/extensions/reply-to":
                    "mailto:liam.obrien@students.lakeside.example.edu"}},
        },
        {   # Canvas grade: the grader as an agent in result extensions.
            "id": _id(9), "actor": LIAM, "timestamp": at + "09:00Z",
            "verb": {"id": "http://adlnet.gov/expapi/verbs/scored"},
            "object": {"id": f"{CANVAS}/courses/5/assignments/31", "definition": {
                "type": "http://adlnet.gov/expapi/activities/assessment", "name": {"en-US": "Lab report"}}},
            "result": {"score": {"scaled": 0.9}, "success": True,
                       "extensions": {"https://canvas.instructure.com/xapi/extensions/grader": TEACHER}},
        },
        {   # A sub-statement: Mei says Priya mentored her, with a context extension naming Tomasz.
            "id": _id(10), "actor": MEI, "timestamp": at + "10:00Z",
            "verb": {"id": "http://adlnet.gov/expapi/verbs/reported"},
            "object": {"objectType": "SubStatement", "actor": PRIYA,
                       "verb": {"id": "http://id.tincanapi.com/verb/mentored"},
                       "object": {"objectType": "Agent", **{k: v for k, v in MEI.items()
                                                            if k != "objectType"}},
                       "context": {"extensions": {FOR: TOMASZ}}},
        },
        {   # An attachment described in free text.
            "id": _id(11), "actor": PRIYA, "timestamp": at + "11:00Z",
            "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
            "object": {"id": f"{MOODLE}/mod/assign/view.php?id=88"},
            "attachments": [{"usageType": "http://id.tincanapi.com/attachment/supporting_media",
                             "display": {"en": "Essay by Priya Ramanathan"}, "contentType": "application/pdf",
                             "length": 5120, "sha2": hashlib.sha256(b"essay").hexdigest(),
                             "fileUrl": f"{MOODLE}/pluginfile.php/55204171/priya-ramanathan-essay.pdf"}],
        },
    ]
