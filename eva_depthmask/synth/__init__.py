"""Procedural rooms and sprites with exact depth: pure numpy, no torch.

textures -> body_parts -> sprites; furniture -> raycast -> shading; scenes puts a sprite in a room.
"""
