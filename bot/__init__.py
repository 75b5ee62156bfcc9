"""The SMS coping-skills bot.

`bot.app.create_app` assembles the web application (read it as a table of contents). The domain
core (conversation, matching, risk, safety, nudges, skills) imports neither Flask nor Twilio, so
importing it here would be wrong: this package file stays empty.
"""
