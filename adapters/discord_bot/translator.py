"""Discord's own texts of the commands (descriptions, option descriptions, the Apps menu's names) in each
shipped language, from the same catalogs as every reply (bot/locales), for `tree.set_translator`.

Discord shows a client the strings of its locale and falls back to the declared (English) ones. Slash
command and option *names* stay English: they are what people type, and what `/help` and the replies say.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n import words
from bot.language import DEFAULT, supported

_TRANSLATED = {Where.command_description, Where.group_description, Where.parameter_description}


class CatalogTranslator(app_commands.Translator):
    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        language = supported(locale.value)
        if language is None or language == DEFAULT:
            return None  # Discord shows the English
        menu_name = context.location is Where.command_name and isinstance(context.data, app_commands.ContextMenu)
        if context.location not in _TRANSLATED and not menu_name:
            return None
        translated = words(language).gettext(string.message)
        return translated if translated != string.message else None
