// Gust Node bootstrap (being written)
