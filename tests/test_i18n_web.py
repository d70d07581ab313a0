"""The web page in the visitor's language: Accept-Language, the picker (`?lang=`, then a cookie), the page's
own words and the API's answers, in the real browser the browser test uses (Debian's Chromium through
Playwright). Screenshots go to $ANIFACE_I18N_SHOTS (default /tmp/i18n-shots): web-ja.png, web-ru.png."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp

from bot.i18n import words
from tests.test_web_browser import CHROMIUM_ARGS, SCENE, _watch, chromium, served  # noqa: F401 - fixtures

SHOTS = Path(os.environ.get("ANIFACE_I18N_SHOTS", "/tmp/i18n-shots"))
JA = words("ja")


async def test_the_page_speaks_the_browsers_language_and_the_pickers(served):
    url, _ = served
    url = url.rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # unsafe: 127.0.0.1
        async with http.get(url, headers={"Accept-Language": "ja,en;q=0.8"}) as response:
            page = await response.text()
            assert response.headers["Content-Language"] == "ja"
        assert '<html lang="ja">' in page and "<title>aniface：このアニメキャラクターは誰？</title>" in page
        assert '<option value="ja" selected>日本語</option>' in page
        assert JA.gettext("Looking for faces\u2026") in page  # app.js's words, for the script to say
        async with http.get(url, headers={"Accept-Language": "fr-FR, de"}) as response:
            assert "<title>aniface: who is this anime character?</title>" in await response.text()
        # the picker beats the browser, and is remembered for the next page and the API's answers
        async with http.get(url + "/?lang=ru", headers={"Accept-Language": "ja"}) as response:
            assert "Выберите картинку" in await response.text()
            assert response.cookies["aniface_lang"].value == "ru"
        async with http.get(url, headers={"Accept-Language": "ja"}) as response:
            assert '<html lang="ru">' in await response.text()
        async with http.get(url + "/?lang=<script>", headers={"Accept-Language": "es"}) as response:
            assert '<html lang="ru">' in await response.text()  # nonsense is not a choice


async def test_the_page_and_its_answers_in_japanese_and_in_russian_in_a_real_browser(chromium, served,
                                                                                    shared_data):
    from playwright.async_api import async_playwright, expect

    url, _ = served
    scene = shared_data / "scenes" / SCENE
    problems: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(locale="ja-JP", viewport={"width": 1100, "height": 820})
            page = await context.new_page()
            _watch(page, problems)
            await page.goto(url)
            await expect(page).to_have_title("aniface：このアニメキャラクターは誰？")
            await page.set_input_files("#file", str(scene))
            await expect(page.locator("#faces .face")).to_have_count(1, timeout=60_000)
            await expect(page.locator("#status")).to_contain_text("見つかった顔：1。")
            await expect(page.locator("#faces .face .actions label")).to_contain_text("違いますか？")
            await page.screenshot(path=str(SHOTS / "web-ja.png"), full_page=True)

            # the picker: Russian, kept by the cookie; the core's own answer comes in Russian too
            await page.select_option("#language", "ru")
            await expect(page).to_have_title("aniface: кто этот аниме-персонаж?")
            await page.set_input_files("#file", str(scene))
            await expect(page.locator("#status")).to_contain_text("Найдено лиц: 1.", timeout=60_000)
            card = page.locator("#faces .face").nth(0)
            await card.locator("input").fill("Chino Kafu")
            await card.locator("button[type=submit]").click()
            await expect(card.locator(".ack.ok")).to_contain_text("Спасибо! Записал", timeout=30_000)
            await expect(card.locator(".pct").first).to_contain_text("\u00a0%")  # Russian writes "40 %"
            await page.screenshot(path=str(SHOTS / "web-ru.png"), full_page=True)
        finally:
            await browser.close()
    assert not problems, problems
