"""What a person uses: figures, the notebook prediction browser, the demo, Colab helpers and the
command line.
"""
