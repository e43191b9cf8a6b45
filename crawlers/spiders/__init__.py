"""Spiders: weibo, mailbox, forum.  They route; page objects (crawlers.pages) extract."""
