# Gust Python bootstrap (being written)
