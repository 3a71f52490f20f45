"""The post-purchase survey: a one-click 0–10 answer from the mail, a comment, and NPS for the merchant."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from email.utils import parseaddr

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from plugin.delivery.batch import deliver_batch
from plugin.engine.tick import run_shop_tick
from plugin.measurement.nps import nps, nps_by_group, nps_over_time
from plugin.measurement.surveys import nps_summary, survey_links
from plugin.storage.models import Message, SurveyAnswer, SurveyAnswerGroup
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import enable, make_customer, make_order, make_product, make_shop

BUTTON = re.compile(r'href="http://okaeri\.test(/s/[^"]+)" data-score="(\d+)"')


def _survey_shop(session, clock, customers: int = 1, products_per_order: int = 2):  # type: ignore[no-untyped-def]
    """A shop whose customers ordered 7 days ago: each is due the survey mail."""
    now = clock.now()
    shop = make_shop(session, now)
    enable(session, shop, "post_purchase", now)
    items = [make_product(session, shop, now, name=f"煎茶{n}") for n in range(products_per_order)]
    people = [make_customer(session, shop, now) for _ in range(customers)]
    orders = [make_order(session, shop, person, now - timedelta(days=7, hours=1), items) for person in people]
    return shop, people, orders, items


def _mails(runtime, session, shop, catcher) -> dict[str, dict[int, str]]:  # type: ignore[no-untyped-def]
    """{recipient: {score: answer path}} of the delivered survey mails."""
    run_shop_tick(runtime, shop.id)
    deliver_batch(runtime, list(session.execute(select(Message.id).where(Message.shop_id == shop.id)).scalars()))
    links = {}
    for mail in catcher.snapshot():
        html = mail.get_body(("html",)).get_content()
        links[parseaddr(str(mail["To"]))[1]] = {int(score): path for path, score in BUTTON.findall(html)}
    return links


def _one_mail(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    shop, (person,), (order,), items = _survey_shop(session, clock)
    (links,) = _mails(runtime, session, shop, catcher).values()
    return shop, person, order, items, links


def _answers(session) -> list[SurveyAnswer]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.execute(select(SurveyAnswer)).scalars())


def _merchant(runtime, shop) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    return client


def test_the_survey_mail_asks_the_question_with_eleven_one_click_scores(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, _, _, _, links = _one_mail(runtime, session, clock, catcher)
    assert sorted(links) == list(range(11))
    mail = catcher.snapshot()[0]
    assert "このショップを友人や知人にすすめる可能性" in mail.get_body(("html",)).get_content()
    assert "10: http://okaeri.test/s/" in mail.get_body(("plain",)).get_content()


def test_a_click_stores_the_score_for_the_customer_order_and_product_groups(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    # Given a delivered survey mail
    shop, person, order, items, links = _one_mail(runtime, session, clock, catcher)
    # When the customer clicks 9
    page = TestClient(create_app(runtime)).get(links[9])
    # Then the thank-you page asks for a comment, in Japanese
    assert page.status_code == 200 and "ご回答ありがとうございました" in page.text and 'name="comment"' in page.text
    (answer,) = _answers(session)
    assert (answer.score, answer.customer_id, answer.order_id, answer.shop_id) == (9, person.id, order.id, shop.id)
    groups = session.execute(select(SurveyAnswerGroup.group_key).where(SurveyAnswerGroup.answer_id == answer.id))
    assert sorted(groups.scalars()) == sorted(item.group_code for item in items)  # the shop's product groups


def test_a_second_click_updates_the_answer_and_never_adds_a_row(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    *_, links = _one_mail(runtime, session, clock, catcher)
    client = TestClient(create_app(runtime))
    client.get(links[3])
    client.get(links[8])
    client.get(links[8])
    (answer,) = _answers(session)
    assert answer.score == 8
    assert session.execute(select(func.count()).select_from(SurveyAnswerGroup)).scalar_one() == 2


def test_a_prefetched_link_does_not_overwrite_a_posted_answer(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    # Given a customer who clicked 4 and posted the thank-you page's form
    *_, links = _one_mail(runtime, session, clock, catcher)
    client = TestClient(create_app(runtime))
    client.get(links[4])
    token_path = links[4].rsplit("/", 1)[0]
    client.post(token_path, data={"score": "4", "comment": ""})
    # When a mail scanner later fetches every button
    for path in links.values():
        page = client.get(path)
    # Then the answer is still the customer's own, and the page says so
    (answer,) = _answers(session)
    assert answer.score == 4 and answer.confirmed_at is not None
    assert "すでに 4 とご回答" in page.text
    # while a HEAD request (some scanners only ask for headers) is not even answered
    assert client.head(links[10]).status_code == 405
    assert _answers(session)[0].score == 4


def test_forged_or_tampered_links_are_refused_in_japanese(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    *_, links = _one_mail(runtime, session, clock, catcher)
    client = TestClient(create_app(runtime), headers={"accept": "text/html"})
    path = links[9]
    _, token, score = path.split("/")[1:]
    version, shop_id, customer_id, message_id, order_id, tag = token.split(".")
    other_customer = f"/s/{version}.{shop_id}.{int(customer_id) + 1}.{message_id}.{order_id}.{tag}/9"
    for forged in (f"/s/{token[:-3]}xyz/9", other_customer, f"/s/{token}/11", f"/s/{token}/-1", "/s/nonsense/5"):
        page = client.get(forged)
        assert page.status_code == 400 and ("無効" in page.text or "0 から 10" in page.text), forged
    assert client.post(f"/s/{token[:-3]}xyz", data={"score": "9", "comment": "spam"}).status_code == 400
    assert _answers(session) == []


def test_a_comment_is_stored_and_shown_to_the_merchant(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, person, *_, links = _one_mail(runtime, session, clock, catcher)
    client = TestClient(create_app(runtime))
    client.get(links[10])
    done = client.post(links[10].rsplit("/", 1)[0], data={"score": "10", "comment": "香りがとても良かったです"})
    assert done.status_code == 200 and "ご回答を受け付けました" in done.text
    (answer,) = _answers(session)
    assert (answer.score, answer.comment) == (10, "香りがとても良かったです")
    page = _merchant(runtime, shop).get("/app/surveys")
    assert page.status_code == 200 and "香りがとても良かったです" in page.text and person.name in page.text
    assert re.search(r'id="nps">\+100<', page.text)


def test_a_comment_too_long_is_refused_and_kept_for_editing(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    *_, links = _one_mail(runtime, session, clock, catcher)
    client = TestClient(create_app(runtime))
    answer = client.post(links[5].rsplit("/", 1)[0], data={"score": "5", "comment": "あ" * 2001})
    assert answer.status_code == 422 and "2000 文字以内" in answer.text
    assert _answers(session) == []


def test_nps_is_promoters_minus_detractors_overall_and_per_product_group(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    # Given five survey mails: three customers bought tea A, two bought tea B
    now = clock.now()
    shop = make_shop(session, now)
    enable(session, shop, "post_purchase", now)
    tea_a, tea_b = make_product(session, shop, now, name="煎茶A"), make_product(session, shop, now, name="煎茶B")
    people = [make_customer(session, shop, now) for _ in range(5)]
    for person, item in zip(people, [tea_a, tea_a, tea_a, tea_b, tea_b], strict=True):
        make_order(session, shop, person, now - timedelta(days=7, hours=1), [item])
    links = _mails(runtime, session, shop, catcher)
    # When they answer 10, 9, 7 (tea A) and 3, 9 (tea B)
    client = TestClient(create_app(runtime))
    for person, score in zip(people, [10, 9, 7, 3, 9], strict=True):
        client.get(links[person.email][score])
    # Then NPS = (3 promoters − 1 detractor) / 5 = +40; tea A: +66.7, tea B: 0
    summary = nps_summary(session, shop.id, now - timedelta(days=1), now + timedelta(days=1))
    assert (summary["answers"], summary["promoters"], summary["passives"], summary["detractors"]) == (5, 3, 1, 1)
    assert summary["nps"] == 40.0
    groups = {row["name"]: round(row["nps"], 1) for row in nps_by_group(session, shop.id, None, None)}
    assert groups == {"煎茶A": 66.7, "煎茶B": 0.0}
    assert nps_summary(session, shop.id, now + timedelta(days=1), None)["nps"] is None  # no answers: no figure
    assert nps(0, 0, 0) is None


def test_nps_over_time_by_month_and_week_in_shop_time(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, people, _, _ = _survey_shop(session, clock, customers=2, products_per_order=1)
    links = _mails(runtime, session, shop, catcher)
    client = TestClient(create_app(runtime))
    client.get(links[people[0].email][10])  # 2026-11-20 12:00 Tokyo (a Friday)
    clock.advance(days=11, hours=12)  # 2026-12-02 00:00 Tokyo: December, the week of Monday 11-30
    client.get(links[people[1].email][0])
    months = nps_over_time(session, shop.id, shop.timezone, "month", None, None, clock.now())
    assert [(m["period"], m["answers"], m["nps"]) for m in months] == [("2026-11", 1, 100.0), ("2026-12", 1, -100.0)]
    weeks = nps_over_time(session, shop.id, shop.timezone, "week", None, None, clock.now())
    assert [w["period"] for w in weeks] == ["2026-11-16", "2026-11-30"]
    page = _merchant(runtime, shop).get("/app/surveys?period=week")
    assert page.status_code == 200 and "2026-11-30 の週" in page.text


def test_the_surveys_page_says_what_to_do_when_there_are_no_answers(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now())
    client = _merchant(runtime, shop)
    page = client.get("/app/surveys")
    assert page.status_code == 200 and "まだ回答がありません" in page.text and "購入後ステップ配信をON" in page.text
    assert "No answers yet" in client.get("/app/surveys?lang=en").text
    assert client.get("/app/surveys?period=year", headers={"accept": "text/html"}).status_code == 422
    assert TestClient(create_app(runtime)).get("/app/surveys", headers={"accept": "text/html"}).status_code == 401


def test_csv_export_has_a_bom_every_answer_and_no_formulas(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, person, order, items, links = _one_mail(runtime, session, clock, catcher)
    client = TestClient(create_app(runtime))
    client.get(links[6])
    client.post(links[6].rsplit("/", 1)[0], data={"score": "6", "comment": "=HYPERLINK(\"http://evil\")"})
    answer = _merchant(runtime, shop).get("/app/surveys.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    header, row = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert header[:6] == ["回答日時", "顧客ID", "顧客", "メールアドレス", "注文番号", "スコア"]
    assert row[0] == "2026-11-20 12:00" and row[1] == str(person.id) and row[4] == order.external_id
    assert (row[5], row[6], row[7]) == ("6", "批判者", "'=HYPERLINK(\"http://evil\")")
    assert row[8] == " / ".join(sorted((item.name for item in items), key=lambda n: n))


def test_the_answer_pages_speak_the_mails_language_and_switch_on_request(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, _, _, _, links = _one_mail(runtime, session, clock, catcher)
    client = TestClient(create_app(runtime), headers={"accept-language": "en-US,en"})
    assert "ご回答ありがとうございました" in client.get(links[7]).text  # the mail was Japanese
    page = client.get(links[7] + "?lang=en")
    assert "Thank you for your answer" in page.text and "?lang=en" in page.text
    done = client.post(links[7].rsplit("/", 1)[0] + "?lang=en", data={"score": "7", "comment": "Nice"})
    assert "Your answer is recorded" in done.text


def test_the_survey_links_are_rate_limited_like_the_tracking_links(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    *_, links = _one_mail(runtime, session, clock, catcher)
    runtime.settings = runtime.settings.model_copy(update={"rate_limit_tracking": "2/minute"})
    client = TestClient(create_app(runtime), headers={"accept": "text/html"})
    assert [client.get(links[n]).status_code for n in (1, 2)] == [200, 200]
    refused = client.get(links[3])
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert _answers(session)[0].score == 2


def test_a_preview_mails_survey_link_records_nothing(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now())
    person = make_customer(session, shop, clock.now())
    preview = Message(shop_id=shop.id, customer_id=person.id, scenario_key="post_purchase")  # never stored: no id
    (link, *_) = survey_links(runtime, shop.id, preview)
    page = TestClient(create_app(runtime)).get(str(link["url"]).removeprefix("http://okaeri.test"))
    assert page.status_code == 200 and "プレビュー" in page.text
    assert _answers(session) == []
