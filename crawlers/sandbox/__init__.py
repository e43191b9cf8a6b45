"""The practice site: generated government-message content served in real site shapes.

``generator`` builds the content (seeded, reproducible, clock-driven);
``server`` serves it as mobile-Weibo JSON, 留言板 JSON, two mayor-mailbox
HTML layouts and a Discuz! board.  Tests, benchmarks and the demo reuse both.
"""
