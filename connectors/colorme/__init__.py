"""ColorMe Shop (カラーミーショップ): OAuth, App-store hooks and polling sync."""
