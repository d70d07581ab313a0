"""The correction flow: a vote on a stored face and the name it gives.

`Corrector` runs inside one database transaction (a `VoteStore`), in a worker thread (`Core` calls it
through `asyncio.to_thread`). It changes nothing in memory: the votes and new names it stores are
written with their gallery events (bot/storage/events.py), which every process, this one included,
applies once they are committed (bot/following.py). The "did you mean" memory (a new name offered back
once and sent again is accepted) is stored too, so it holds on whichever process the answer reaches.
"""

from __future__ import annotations

from bot import wording
from bot.i18n import Words
from bot.corrections import read_answer
from bot.messages import Ack, AckReason, Correction, Person, Verdict
from bot.names import NameBook, NameStatus
from bot.privacy import Hasher
from bot.storage.models import Character, Face
from bot.storage.repository import Repository, VoteStore
from recognizer.labels import display_name, label_key


class Corrector:
    def __init__(self, store: Repository, names: NameBook, hasher: Hasher) -> None:
        self.store = store
        self.names = names  # read only: names are learned from the events (Core._apply)
        self.hasher = hasher

    # --- the ways a correction comes in --------------------------------------------------------

    def correct(self, correction: Correction, w: Words) -> Ack:
        """A correction of an answer, found by the bot message it replies to."""
        person = correction.person
        with self.store.votes() as session:
            prediction = session.answered_by(person.platform, correction.chat_id, correction.bot_message_id)
            if prediction is None:
                return Ack(False, wording.not_a_prediction(w), reason=AckReason.NOT_AN_ANSWER)
            faces = prediction.faces
            several = len(faces) > 1
            if correction.face_number is None and several:
                if correction.verdict == Verdict.RIGHT:
                    return self._confirm_all(session, person, faces, correction.via, w)
                return Ack(False, wording.which_face(w, len(faces)), reason=AckReason.WHICH_FACE)
            number = correction.face_number or 1
            face = next((f for f in faces if f.number == number), None)
            if face is None:
                return Ack(False, wording.no_such_face(w, number, len(faces)), reason=AckReason.NO_SUCH_FACE)
            return self._vote(session, person, face, correction.verdict, correction.name, correction.candidate,
                              correction.via, several, w)

    def press(self, person: Person, chat_id: str, face_id: int, choice: int | None, via: str, w: Words) -> Ack:
        """A button under an answer: candidate `choice` (1-based), or None for "none of these"."""
        with self.store.votes() as session:
            face = session.face(face_id)
            if face is None or face.prediction.chat_id != chat_id or face.prediction.platform != person.platform:
                return Ack(False, wording.not_a_prediction(w), reason=AckReason.NOT_AN_ANSWER)
            several = len(face.prediction.faces) > 1
            verdict = Verdict.WRONG if choice is None else Verdict.IS
            return self._vote(session, person, face, verdict, None, choice, via, several, w)

    def name_face(self, person: Person, face_id: int, name: str, via: str, chat_id: str | None,
                  w: Words) -> Ack:
        """A face named by its id, `name` as typed (a bare number picks that guess)."""
        with self.store.votes() as session:
            face = session.face(face_id)
            if face is None or (chat_id is not None and face.prediction.chat_id != chat_id):
                return Ack(False, wording.unknown_face(w), reason=AckReason.NOT_AN_ANSWER)
            answer = read_answer(name)
            return self._vote(session, person, face, Verdict.IS, answer.name, answer.candidate, via,
                              len(face.prediction.faces) > 1, w)

    def answer_question(self, person: Person, chat_id: str, text: str, w: Words) -> Ack | None:
        """The answer of someone the bot asked for a name; None when nobody asked them."""
        user_hash = self.hasher(person.platform, person.user_id)
        with self.store.votes() as session:
            question = session.question(person.platform, chat_id, user_hash)
            if question is None:
                return None
            face = session.face(question.face_id)
            answer = read_answer(text)
            ack = self._vote(session, person, face, Verdict.IS, answer.name, answer.candidate, "reply",
                             len(face.prediction.faces) > 1, w)
            if ack.ok:
                session.forget_question(question)
            return ack

    # --- the vote ------------------------------------------------------------------------------

    def _confirm_all(self, session: VoteStore, person: Person, faces: list[Face], via: str, w: Words) -> Ack:
        confirmed = []
        for face in faces:
            if face.predicted_name:
                self._vote(session, person, face, Verdict.RIGHT, None, None, via, True, w)
                confirmed.append(f"{face.number}. {wording.shown(face.predicted_name)}")
        if not confirmed:
            return Ack(False, wording.which_face(w, len(faces)), reason=AckReason.WHICH_FACE)
        return Ack(True, wording.confirmed_all(w, confirmed))

    def _vote(self, session: VoteStore, person: Person, face: Face, verdict: Verdict, name: str | None,
              candidate: int | None, via: str, several: bool, w: Words) -> Ack:
        user_hash = self.hasher(person.platform, person.user_id)
        if verdict == Verdict.RIGHT:
            guess = face.predicted_name or (face.candidates[0]["name"] if face.candidates else None)
            if guess is None:
                verdict = Verdict.WRONG
            else:
                verdict, name = Verdict.IS, guess
        if verdict == Verdict.IS and candidate is not None:
            if not 1 <= candidate <= len(face.candidates):
                return Ack(False, wording.no_such_candidate(w), reason=AckReason.NO_SUCH_GUESS)
            name = face.candidates[candidate - 1]["name"]
        if verdict == Verdict.WRONG or name is None:
            session.put_vote(face, person.platform, user_hash, "not", None, via)
            session.ask(person.platform, face, user_hash)
            return Ack(True, wording.ask_name(w, face.number, several), asks_for_name=True, face_id=face.id,
                       reason=AckReason.ASK_NAME)

        character, refusal = self._character_for(session, name, user_hash, face.id, w, from_model=candidate is not None
                                                 or name == face.predicted_name)
        if character is None:
            return refusal
        session.put_vote(face, person.platform, user_hash, "is", character.id, via)
        session.forget_offer(user_hash, face.id)
        text = (wording.confirmed if name == face.predicted_name else wording.thanks)(w, character.name, face.number,
                                                                                      several)
        return Ack(True, text, face_id=face.id)

    def _character_for(self, session: VoteStore, name: str, user_hash: str, face_id: int, w: Words,
                       from_model: bool) -> tuple[Character | None, Ack | None]:
        match = self.names.resolve(name)
        if match.status == NameStatus.INVALID:
            return None, Ack(False, wording.bad_name(w, match), reason=AckReason.BAD_NAME)
        if match.status == NameStatus.SUGGEST and not from_model:
            key = label_key(match.name)
            if session.offered(user_hash, face_id) != key:
                session.offer(user_hash, face_id, key)
                return None, Ack(False, wording.did_you_mean(w, match.suggestions, match.name), match.suggestions,
                                 reason=AckReason.SUGGEST)
        target = match.name if match.status == NameStatus.KNOWN else display_name(match.name)
        key = label_key(target)
        character = session.character(key)
        if character is None:
            character = session.add_character(target, key, "model" if from_model else "user")
        return character, None
